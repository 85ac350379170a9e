"""Where the service's admin token comes from: env, then config, then a private local file.

The file lets a local service started by the deployment pipeline or the demo be
administered by the same user without anyone pasting secrets; it is created 0600.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from zenloop.paths import data_dir

ADMIN_TOKEN_ENV = "ZENLOOP_ADMIN_TOKEN"
TOKEN_FILE = "admin.token"
TOKEN_BYTES = 32


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
    path = token_path()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.replace(temporary, path)  # readers see no token or the whole token, never half
    return token
