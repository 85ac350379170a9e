"""The guard of the admin endpoints: the admin token.

The token is declared through `fastapi.security`, so the OpenAPI document shows the two
ways to send it (a bearer token, or the `x-admin-token` header) and /docs can use them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.service import ServiceDep
from zenloop.admin_token import ADMIN_TOKEN_ENV, refusal

ADMIN_TOKEN_HEADER = "x-admin-token"  # alternative to `Authorization: Bearer <token>`
TOKEN_HELP = f"the service's admin token (${ADMIN_TOKEN_ENV}, the config, or the token file)"

# auto_error=False: a missing token is answered by `require_admin` (401, not FastAPI's 403)
bearer = HTTPBearer(scheme_name="AdminBearer", auto_error=False, description=TOKEN_HELP)
token_header = APIKeyHeader(
    name=ADMIN_TOKEN_HEADER,
    scheme_name="AdminTokenHeader",
    auto_error=False,
    description=TOKEN_HELP,
)


def check_admin(
    expected: str | None, credentials: HTTPAuthorizationCredentials | None, *others: str | None
) -> None:
    """403 when admin is disabled or the token is wrong, 401 when none was sent (the core's
    one check; either way of sending it may carry the token: a stray second one does not
    veto it)."""
    given = [credentials.credentials if credentials else None, *others]
    if (refused := refusal(expected, given)) is not None:
        headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
        raise HTTPException(refused.status, refused.detail, headers=headers)


def require_admin(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_token: Annotated[str | None, Security(token_header)],
) -> None:
    check_admin(service.admin_token, credentials, header_token)


ADMIN = [Depends(require_admin)]
