"""The bot's settings: one frozen dataclass read from the environment (and .env, via __main__)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from retrieval.seedfile import is_web_url
from retrieval.usage import yes_or_no

DEFAULT_API_ROOT = "https://api.telegram.org"
# Behind a TLS proxy on the same host; the Docker image and compose set 0.0.0.0 themselves.
DEFAULT_WEBHOOK_LISTEN = "127.0.0.1"

# A bot token looks like 123456789:AAE...; checking the shape catches copy-paste accidents
# (quotes, spaces, a missing half) before Telegram answers with a puzzling 401/404. The log
# filter (logs.py) redacts this same shape.
TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
# Telegram's own rule for secret_token in setWebhook.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# What httpx (hence PTB and the feed fetcher) can talk to; socks5h resolves names at the proxy.
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

T = TypeVar("T")


def no_token_message(bot_command: str = "python -m bot") -> str:
    """What to do without a token; `bot_command` is how the bot was run (retrieval.usage)."""
    return (
        "TELEGRAM_BOT_TOKEN is not set, the bot needs one to talk to Telegram; get a token from "
        "@BotFather in Telegram (send /newbot, follow the prompts, copy the token it gives you), "
        "then put TELEGRAM_BOT_TOKEN=<token> in a .env file in the current directory or export "
        f"it in the environment, or try the bot without a token: {bot_command} --console"
    )


class SettingsError(ValueError):
    """Settings are missing or invalid: `problems` holds one line for each, naming its setting
    (str(error) is those lines)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot can be configured with. See .env.example for the documentation."""

    token: str | None = None
    seeds_dir: Path = Path("seeds")
    index_dir: Path | None = None
    aliases_file: Path | None = None
    api_root: str = DEFAULT_API_ROOT
    results_per_page: int = 3
    admin_user_ids: frozenset[int] = frozenset()
    log_level: str = "INFO"
    reload_seconds: float = 30.0
    webhook_url: str | None = None
    webhook_listen: str = DEFAULT_WEBHOOK_LISTEN
    webhook_port: int = 8443
    webhook_secret: str | None = None
    feed_urls: tuple[str, ...] = ()
    feed_interval_minutes: float = 30.0
    subscriptions_db: Path = Path("subscriptions.sqlite3")
    questions_per_minute: int = 20
    answer_deadline_seconds: float = 10.0
    telegram_proxy: str | None = None
    feed_proxy: str | None = None
    feed_allow_private: bool = False
    start_retry_seconds: float = 30.0
    autoanswer_interval_seconds: float = 120.0
    follow_max_topics: int = 10  # topics a chat may /follow
    alert_keep_days: float = 30.0  # how long a pushed passage is remembered (never twice)

    def __repr__(self) -> str:
        # The token must never reach a log line, not even through a repr in a traceback.
        return f"Settings(seeds_dir={self.seeds_dir!s}, api_root={self.api_root}, ...)"

    @property
    def secrets(self) -> list[str]:
        """What the log filter must redact: the token, the webhook secret, proxy credentials,
        and the credentials and query strings of feed URLs."""
        found = [self.token or "", self.webhook_secret or ""]
        for proxy in (self.telegram_proxy, self.feed_proxy):
            found += proxy_credentials(proxy)
        for url in self.feed_urls:
            found += feed_url_secrets(url)
        return [s for s in found if s]

    @property
    def base_url(self) -> str:
        """What ApplicationBuilder.base_url wants: the API root followed by /bot."""
        return f"{self.api_root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_root}/file/bot"

    @property
    def webhook_path(self) -> str:
        """The path the webhook server listens on: the path part of WEBHOOK_URL."""
        return urlsplit(self.webhook_url or "").path.lstrip("/")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        require_token: bool = True,
        bot_command: str = "python -m bot",
    ) -> Settings:
        """Read the settings; raise SettingsError naming every bad one (a missing token must
        not hide a typo in another setting). `bot_command` is how the bot was run, for the
        hint when the token is missing."""

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        problems: list[str] = []

        def checked(read: Callable[[], T], default: T) -> T:
            try:
                return read()
            except SettingsError as exc:
                problems.extend(exc.problems)
                return default

        token = get("TELEGRAM_BOT_TOKEN")
        if token is None and require_token:
            problems.append(no_token_message(bot_command))
        if token is not None and not TOKEN_RE.fullmatch(token):
            # Never echo the value: it may be a real token with a typo.
            problems.append(
                "TELEGRAM_BOT_TOKEN does not look like a bot token "
                "(expected digits, a colon, then the secret, as @BotFather shows it)"
            )
        webhook_url, webhook_secret = _webhook(get, problems)

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in _LOG_LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")

        aliases_file = get("ALIASES_FILE")
        settings = cls(
            token=token,
            seeds_dir=Path(get("SEEDS_DIR") or "seeds"),
            index_dir=checked(lambda: _index_dir(get("INDEX_DIR")), None),
            aliases_file=Path(aliases_file) if aliases_file else None,
            api_root=checked(lambda: _api_root(get("TELEGRAM_API_BASE_URL")), DEFAULT_API_ROOT),
            results_per_page=checked(lambda: _int(get, "RESULTS_PER_PAGE", 3, low=1, high=10), 3),
            admin_user_ids=checked(lambda: _id_list(get("ADMIN_USER_IDS")), frozenset()),
            log_level=log_level,
            reload_seconds=checked(
                lambda: _number(get, "RELOAD_SECONDS", 30.0, low=0.0, high=86400.0), 30.0
            ),
            webhook_url=webhook_url,
            webhook_listen=checked(
                lambda: _listen_address(get("WEBHOOK_LISTEN")), DEFAULT_WEBHOOK_LISTEN
            ),
            webhook_port=checked(lambda: _int(get, "WEBHOOK_PORT", 8443, low=1, high=65535), 8443),
            webhook_secret=webhook_secret,
            feed_urls=checked(lambda: _url_list(get("FEED_URLS")), ()),
            feed_interval_minutes=checked(lambda: _interval_minutes(get), 30.0),
            subscriptions_db=Path(get("SUBSCRIPTIONS_DB") or "subscriptions.sqlite3"),
            questions_per_minute=checked(
                lambda: _int(get, "QUESTIONS_PER_MINUTE", 20, low=0, high=10000), 20
            ),
            answer_deadline_seconds=checked(
                lambda: _number(get, "ANSWER_DEADLINE_SECONDS", 10.0, low=0.0, high=3600.0), 10.0
            ),
            telegram_proxy=checked(lambda: _proxy("TELEGRAM_PROXY", get("TELEGRAM_PROXY")), None),
            feed_proxy=checked(lambda: _proxy("FEED_PROXY", get("FEED_PROXY")), None),
            feed_allow_private=checked(lambda: _flag(get, "FEED_ALLOW_PRIVATE"), False),
            start_retry_seconds=checked(
                lambda: _number(get, "START_RETRY_SECONDS", 30.0, low=0.0, high=3600.0), 30.0
            ),
            autoanswer_interval_seconds=checked(
                lambda: _number(get, "AUTOANSWER_INTERVAL_SECONDS", 120.0, low=0.0, high=86400.0),
                120.0,
            ),
            follow_max_topics=checked(
                lambda: _int(get, "FOLLOW_MAX_TOPICS", 10, low=0, high=100), 10
            ),
            alert_keep_days=checked(
                lambda: _number(get, "ALERT_KEEP_DAYS", 30.0, low=1.0, high=3650.0), 30.0
            ),
        )
        if problems:
            raise SettingsError(*problems)
        return settings


def _webhook(get: Callable[[str], str | None], problems: list[str]) -> tuple[str | None, ...]:
    """WEBHOOK_URL and WEBHOOK_SECRET, which go together; what is wrong goes to `problems`."""
    webhook_url = get("WEBHOOK_URL")
    webhook_secret = get("WEBHOOK_SECRET")
    if webhook_url is not None:
        if urlsplit(webhook_url).scheme != "https" or not is_web_url(webhook_url):
            problems.append(f"WEBHOOK_URL must be an https:// URL, got {webhook_url!r}")
        if webhook_secret is None:
            problems.append(
                "WEBHOOK_SECRET is required when WEBHOOK_URL is set "
                "(1-256 characters: letters, digits, _ and -)"
            )
    elif webhook_secret is not None:
        # Without WEBHOOK_URL the bot polls and the secret would do nothing: say so.
        problems.append(
            "WEBHOOK_SECRET is set but WEBHOOK_URL is not: set WEBHOOK_URL for webhook mode, "
            "or remove WEBHOOK_SECRET to poll"
        )
    if webhook_secret is not None and not _SECRET_RE.match(webhook_secret):
        problems.append("WEBHOOK_SECRET must be 1-256 characters of letters, digits, _ and -")
    return webhook_url, webhook_secret


def _api_root(value: str | None) -> str:
    if value is None:
        return DEFAULT_API_ROOT
    if not is_web_url(value):
        raise SettingsError(
            f"TELEGRAM_API_BASE_URL must be a URL like http://localhost:8081, got {value!r}"
        )
    root = value.rstrip("/")
    # Accept the URL with PTB's "/bot" suffix too, as people copy it from PTB's docs.
    return root.removesuffix("/bot")


def _index_dir(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    # A path that does not exist yet is created on the first save; one that cannot be created
    # (a read-only disk) gets a warning and an index kept in memory. A file there is a mistake.
    if path.exists() and not path.is_dir():
        raise SettingsError(f"INDEX_DIR must be a directory, but {value!r} is a file")
    return path


def _listen_address(value: str | None) -> str:
    """An IP address (v4 or v6) or a host name that resolves; checked before any Bot API call,
    so a typo never leaves a webhook registered that nothing serves."""
    if value is None:
        return DEFAULT_WEBHOOK_LISTEN
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value) is None:  # 999.1.1.1 is no host name either
        try:
            socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
            return value
        except (OSError, UnicodeError):
            pass
    raise SettingsError(
        f"WEBHOOK_LISTEN must be an IP address (e.g. 0.0.0.0, 127.0.0.1, ::) or a host name "
        f"that resolves, got {value!r}"
    )


def proxy_credentials(url: str | None) -> list[str]:
    """The user:password part of a proxy URL and the password alone, for redaction."""
    if not url:
        return []
    parts = urlsplit(url if "://" in url else f"http://{url}")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return [s for s in (userinfo, parts.password or "") if s]


def feed_url_secrets(url: str) -> list[str]:
    """What a feed URL may hold that no log line may show: its user:password part and its
    query string (feeds that want a key mostly take it there, ?token=…)."""
    query = urlsplit(url).query
    return proxy_credentials(url) + ([query] if query else [])


# The standard variables httpx honours when TELEGRAM_PROXY / FEED_PROXY are unset.
STANDARD_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


def standard_proxy_credentials(environ: Mapping[str, str]) -> list[str]:
    """Credentials in HTTPS_PROXY, HTTP_PROXY, ALL_PROXY (either case), for redaction."""
    names = [*STANDARD_PROXY_VARIABLES, *(n.lower() for n in STANDARD_PROXY_VARIABLES)]
    return [c for name in names for c in proxy_credentials(environ.get(name))]


def masked(url: str) -> str:
    """A proxy URL fit for a log line or an error message: credentials replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    _, at, hostport = rest.rpartition("@")
    return f"{scheme}://***@{hostport}" if at else url


def _proxy(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    shown = masked(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise SettingsError(
            f"{name} must be a proxy URL like socks5://host:1080 or http://host:3128 "
            f"(schemes: {', '.join(PROXY_SCHEMES)}), got {shown!r}"
        )
    if port is None and parts.scheme.lower().startswith("socks"):
        raise SettingsError(f"{name} needs a port, e.g. socks5://host:1080, got {shown!r}")
    return value


def _int(get, name: str, default: int, *, low: int, high: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _number(
    get, name: str, default: float, *, low: float, high: float, unit: str = "seconds"
) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


def _flag(get, name: str) -> bool:
    value = yes_or_no(get(name))
    if value is None:
        raise SettingsError(f"{name} must be 1 or 0 (or true/false), got {get(name)!r}")
    return value


def _interval_minutes(get) -> float:
    value = _number(get, "FEED_INTERVAL_MINUTES", 30.0, low=0.0, high=10080.0, unit="minutes")
    if value <= 0:  # fractions are fine (tests poll every few seconds); zero is not
        raise SettingsError(
            f"FEED_INTERVAL_MINUTES must be more than 0, got {get('FEED_INTERVAL_MINUTES')}"
        )
    return value


def _id_list(raw: str | None) -> frozenset[int]:
    if raw is None:
        return frozenset()
    ids = set()
    for part in re.split(r"[,\s]+", raw):
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise SettingsError(
                f"ADMIN_USER_IDS must be numeric user ids separated by commas, got {part!r}"
            ) from None
    return frozenset(ids)


def _url_list(raw: str | None) -> tuple[str, ...]:
    """Feed URLs separated by commas or whitespace, duplicates dropped, order kept."""
    if raw is None:
        return ()
    urls: dict[str, None] = {}
    for part in re.split(r"[,\s]+", raw):
        if not part:
            continue
        if not is_web_url(part):
            raise SettingsError(
                f"FEED_URLS must be http(s) URLs separated by commas or spaces, got {part!r}"
            )
        urls[part] = None
    return tuple(urls)
