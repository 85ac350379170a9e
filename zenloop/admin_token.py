"""The service's admin token: where it comes from (env, then config, then a private local
file) and the one check of a request's token, which the service, the operations page and
the monitor all apply.

The file lets a local service started by the deployment pipeline or the demo be
administered by the same user without anyone pasting secrets; it is created 0600.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zenloop.files import write_atomically
from zenloop.paths import data_dir

ADMIN_TOKEN_ENV = "ZENLOOP_ADMIN_TOKEN"
TOKEN_FILE = "admin.token"
TOKEN_BYTES = 32
SECRET_MODE = 0o600  # only its owner reads it


def token_path() -> Path:
    return data_dir() / TOKEN_FILE


def resolve_admin_token(configured: str | None) -> str | None:
    if token := os.environ.get(ADMIN_TOKEN_ENV) or configured:
        return token
    path = token_path()
    return path.read_text().strip() if path.is_file() else None


def ensure_admin_token(configured: str | None) -> str:
    """The resolved token, creating the local token file when there is none."""
    if token := resolve_admin_token(configured):
        return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    write_atomically(token_path(), token, SECRET_MODE)  # no token or the whole token
    return token


def share_admin_token(configured: str | None) -> str:
    """The resolved token (created when there is none), written to the data folder's token
    file too: a service in a container, which gets the data folder but not this
    process's environment, reads it there."""
    token = ensure_admin_token(configured)
    path = token_path()
    if not path.is_file() or path.read_text().strip() != token:
        write_atomically(path, token, SECRET_MODE)
    return token


@dataclass(frozen=True)
class Refusal:
    """Why a request is not an administrator's, as an HTTP status and a message."""

    status: int
    detail: str


NOT_CONFIGURED = Refusal(403, f"admin endpoints are disabled: no admin token ({ADMIN_TOKEN_ENV})")
NOT_SENT = Refusal(401, "admin token required: send 'Authorization: Bearer <token>'")
WRONG = Refusal(403, "invalid admin token")


def refusal(expected: str | None, given: Iterable[str | None]) -> Refusal | None:
    """None when one of the tokens `given` (a request may send it more than one way) is the
    `expected` one; compared in constant time, every candidate."""
    if not expected:
        return NOT_CONFIGURED
    tokens = [token for token in given if token]
    if not tokens:
        return NOT_SENT
    matches = [hmac.compare_digest(token.encode(), expected.encode()) for token in tokens]
    return None if any(matches) else WRONG
