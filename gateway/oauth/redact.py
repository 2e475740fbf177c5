"""Keep codes, tokens and secrets out of access logs: clients may send them in the query string."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETER = re.compile(r"\b(code|client_secret|refresh_token|access_token)=[^&\s\"']+")


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(r"\1=[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
