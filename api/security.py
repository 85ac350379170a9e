"""The guard of the admin endpoints: the admin token.

The token is declared through `fastapi.security`, so the OpenAPI document shows the two
ways to send it (a bearer token, or the `x-admin-token` header) and /docs can use them.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.service import ServiceDep
from zenloop.admin_token import ADMIN_TOKEN_ENV

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


def require_admin(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_token: Annotated[str | None, Security(token_header)],
) -> None:
    """403 when admin is disabled or the token is wrong, 401 when none was sent."""
    expected = service.admin_token
    if not expected:
        raise HTTPException(
            403,
            f"admin endpoints are disabled: no admin token is configured ({ADMIN_TOKEN_ENV})",
        )
    # either way of sending it may carry the token: a stray second header does not veto it
    given = [t for t in (header_token, credentials.credentials if credentials else None) if t]
    if not given:
        raise HTTPException(
            401,
            "admin token required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # constant time, and every candidate is compared
    matches = [hmac.compare_digest(t.encode(), expected.encode()) for t in given]
    if not any(matches):
        raise HTTPException(403, "invalid admin token")


ADMIN = [Depends(require_admin)]
