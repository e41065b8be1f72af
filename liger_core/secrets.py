"""Connection strings that carry credentials: usable by the code, unreadable in any output.

``SecretUri`` is a pydantic ``SecretStr`` whose printed form is the URI with its password and
credential-like query values replaced by ``***`` (``postgresql://liger:***@db/liger``), so a
config dump, an MLflow param or a log line still says where it points, never how to log in.
Code that connects calls ``get_secret_value()``.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import PlainSerializer, SecretStr

MASK = "***"
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|key|credential|sig(nature)?", re.IGNORECASE)
_KEYWORD_PAIR = re.compile(r"\b(password|passfile|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_uri(value: str) -> str:
    """``value`` with the password of its authority, secret query values and ``password=``
    pairs of a libpq keyword DSN masked."""
    if "://" not in value:
        return _KEYWORD_PAIR.sub(lambda m: f"{m.group(1)}={MASK}", value)
    parts = urlsplit(value)
    redacted = value
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        redacted = redacted.replace(parts.netloc, f"{user.split(':', 1)[0]}:{MASK}@{host}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(_SECRET_KEYS.search(k) for k, _ in pairs):
        masked = urlencode([(k, MASK if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*")
        redacted = redacted.replace(f"?{parts.query}", f"?{masked}", 1)
    return redacted


class SecretUri(SecretStr):
    """A URI or DSN that prints redacted (see ``redact_uri``)."""

    def _display(self) -> str:
        return redact_uri(self.get_secret_value())


# The config field type: dumps (config print, MLflow params) hold the redacted string.
SecretUriField = Annotated[SecretUri, PlainSerializer(str, return_type=str, when_used="always")]
