"""Passwords inside settings (a PostgreSQL DSN in `db`, `user:password@` in a URL): redacted wherever
settings are stored or shown, and kept out of what Prefect stores.

A pattern, not a URL parser: the values nest one form in another (`ducklake:postgres:postgresql://...`,
`ducklake:postgres:dbname=x password=y`), which urllib does not split.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

MASK = "***"
_SECRETS = (
    # libpq key=value (password=..., sslpassword=...), quoted or not, and the same in a URL's query
    re.compile(r"(?i)(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]+)"),
    # scheme://user:password@host: the password runs to the last @ before the path
    re.compile(r"(://[^/@\s:]*:)([^/\s]+)(?=@)"),
)
HOW_TO_PASS = (
    "give passwords through PGPASSWORD or ~/.pgpass (PostgreSQL) and the AWS_* variables (object storage)"
)


def redact(text: str) -> str:
    """The text with every password in it replaced by ***."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m[1] + MASK, text)
    return text


def has_secret(value: Any) -> bool:
    return isinstance(value, str) and redact(value) != value


def redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they may be stored or shown."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in settings.items()}


def hidden(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as a flow parameter: a value holding a password travels as a SecretStr, which Prefect
    stores as ********** while the flow, called in this process, gets the value itself."""
    return {k: SecretStr(v) if has_secret(v) else v for k, v in settings.items()}


def revealed(settings: dict[str, Any]) -> dict[str, Any]:
    """The values `hidden` wrapped."""
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in settings.items()}


def refuse_secrets(settings: dict[str, Any], where: str) -> None:
    """A ValueError naming the first setting that holds a password (`where` would store it)."""
    for name, value in settings.items():
        if has_secret(value):
            raise ValueError(f"{name}: a password in a setting is kept in plain text {where}; {HOW_TO_PASS}")
