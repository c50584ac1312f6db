"""Logging setup: configured first thing, with the bot token, the webhook secret and proxy
credentials redacted from every record; and `pseudonym`, what INFO lines say instead of a
user's or a chat's id."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from .settings import TOKEN_RE

# "bot123456:ABC-..." in Bot API URLs, and a bare "123456:ABC-..." token anywhere.
_TOKEN_IN_TEXT = re.compile(rf"(?:bot)?{TOKEN_RE.pattern}")
# PTB logs setWebhook's parameters at DEBUG: the secret goes even if it was never configured
# here (a secret of an earlier run, a test), and whatever its length.
_SECRET_PARAM = re.compile(r"""(['"]?secret_token['"]?\s*[:=]\s*)(['"]?)[A-Za-z0-9_-]+""")
# user:password@ in any URL (a proxy's, above all).
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@", re.I)
REDACTED = "<redacted>"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that are chatty at INFO: httpx logs every request URL (token included).
QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.WARNING}


# A new key each run: within a run one chat reads the same in every line (enough to follow a
# flood or a migration), but no line can be turned back into the id, nor matched with another
# run's lines or another bot's logs.
_PSEUDONYM_KEY = os.urandom(16)


def pseudonym(chat_or_user_id: object) -> str:
    """A short salted hash of a Telegram id, for INFO logs ("#3fa91c0b"): ids are personal
    data, and the operator rarely needs them (LOG_LEVEL=DEBUG lines do carry them)."""
    digest = hashlib.blake2b(str(chat_or_user_id).encode(), key=_PSEUDONYM_KEY, digest_size=4)
    return f"#{digest.hexdigest()}"


# Shorter secrets are left to the patterns above: replacing every "p" would garble each line.
MIN_LITERAL_SECRET = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    # Longest first, so that "user:pass" goes whole before "pass" alone.
    for secret in sorted(
        (s for s in secrets if len(s) >= MIN_LITERAL_SECRET), key=len, reverse=True
    ):
        text = text.replace(secret, REDACTED)
    text = _SECRET_PARAM.sub(rf"\g<1>\g<2>{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}@", text)
    return _TOKEN_IN_TEXT.sub(REDACTED, text)


class RedactTokenFilter(logging.Filter):
    """Rewrites each record (message, arguments, traceback) without the bot token.

    Attached to handlers, not loggers, so it sees records propagated from every library."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def configure_logging(
    level: int | str = logging.INFO, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Log to stderr (or `stream`) at `level`, redacting tokens; replaces earlier setup."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactTokenFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet_level, logging.getLogger().level))
