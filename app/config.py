"""Settings for every Clarion process, read from the environment in one place."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"
NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


class ConfigError(RuntimeError):
    """Raised when the environment cannot make a working configuration."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    use_ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Parse `smtp://user:pass@host:port?starttls=1` or `smtps://…`."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, got {url!r}")
        query = parse_qs(parts.query)
        use_ssl = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if use_ssl else 25)
            timeout = float(query.get("timeout", ["30"])[0])
        except ValueError as exc:
            raise ConfigError(f"SMTP_URL has a bad port or timeout: {url!r}") from exc
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            use_ssl=use_ssl,
            starttls=_truthy(query.get("starttls", ["0"])[0]),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _int(environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(environ, name: str, default: float) -> float:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _rate(environ, name: str, default: str) -> str:
    """Return a rate limit such as "10/minute;60/hour", refusing one that cannot be parsed."""
    raw = (environ.get(name) or "").strip() or default
    try:
        parse_many(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must look like '10/minute;60/hour', got {raw!r}") from exc
    return raw


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'clarion.db'}"


def normalise_database_url(url: str) -> str:
    """Make plain `postgresql://` URLs use psycopg 3, the driver Clarion ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str = "redis://127.0.0.1:6379/0"
    smtp_url: str = "smtp://127.0.0.1:1025"
    base_url: str = "http://127.0.0.1:5000"
    secret_keys: tuple[str, ...] = (DEV_SECRET,)
    mail_from: str = "Clarion <alerts@clarion.localhost>"
    organisation_name: str = "Clarion Demo Campaigns"
    postal_address: str = "311 W 43rd Street, 7th Floor, New York, NY 10036"
    unsubscribe_mailto: str = "unsubscribe@clarion.localhost"
    import_dir: Path = PROJECT_ROOT / "var" / "imports"
    capture_dir: Path = PROJECT_ROOT / "var" / "mailbox"
    queue_prefix: str = "clarion"
    batch_size: int = 500
    lease_seconds: int = 60
    # Sent rows are recorded in groups of this many (or every 0.2 s): the most messages a
    # worker killed at the worst moment can have had accepted by SMTP but not yet recorded.
    record_every: int = 20
    clock_interval: float = 5.0
    max_send_attempts: int = 5
    retry_base_seconds: int = 60
    error_pause_threshold: float = 0.2
    smtp_max_connections: int = 4
    smtp_max_rate: float = 0.0  # messages/second across every worker; 0 = unlimited
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: str | None = None
    # Optional second signature (RFC 8463), always beside the RSA one: a PEM or base64 seed key.
    dkim_ed25519_selector: str | None = None
    dkim_ed25519_private_key: str | None = None
    ses_topic_arns: tuple[str, ...] = ()
    webhook_secret: str | None = None
    soft_bounce_limit: int = 3
    letters_per_target_per_hour: int = 200
    # Public action forms (/campaigns/<slug>, /a/<token>, /confirm/<token>): POSTs allowed per
    # client network and, for actions not proven by a signed link, per campaign.
    public_form_rate_per_ip: str = "10/minute;60/hour"
    public_form_rate_per_campaign: str = "600/hour"
    public_form_min_seconds: float = 3.0
    # Staff sign-in attempts allowed per client network and, separately, per email address.
    staff_login_rate: str = "5/minute;30/hour"  # a person takes longer than this to fill the form
    # The staff CSV import is the one request allowed a big body (see app/security.py).
    max_import_bytes: int = 512 * 1024 * 1024
    # Database connections a PostgreSQL import writes its chunks on at once: the server's work
    # per row is most of an import, so a second connection puts a second core to it.
    import_writers: int = 2
    # Stored CSV uploads (personal data) are deleted once this old, unless an import still
    # queued or running reads them (app/supporters/uploads.py).
    import_retention_hours: float = 24.0

    @property
    def smtp(self) -> SmtpSettings:
        return SmtpSettings.from_url(self.smtp_url)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ=None) -> Settings:
        """Build settings from environment variables, refusing unsafe production setups."""
        environ = os.environ if environ is None else environ
        secret_keys = tuple(
            key.strip() for key in environ.get("SECRET_KEYS", "").split(",") if key.strip()
        )
        settings = cls(
            env=environ.get("CLARION_ENV", "development"),
            database_url=normalise_database_url(
                environ.get("DATABASE_URL") or _default_database_url()
            ),
            redis_url=environ.get("REDIS_URL", cls.redis_url),
            smtp_url=environ.get("SMTP_URL", cls.smtp_url),
            base_url=environ.get("BASE_URL", cls.base_url).rstrip("/"),
            secret_keys=secret_keys or (DEV_SECRET,),
            mail_from=environ.get("MAIL_FROM", cls.mail_from),
            organisation_name=environ.get("ORGANISATION_NAME", cls.organisation_name),
            postal_address=environ.get("POSTAL_ADDRESS", cls.postal_address),
            unsubscribe_mailto=environ.get("UNSUBSCRIBE_MAILTO", cls.unsubscribe_mailto),
            import_dir=Path(environ.get("IMPORT_DIR") or cls.import_dir),
            capture_dir=Path(environ.get("CAPTURE_DIR") or cls.capture_dir),
            queue_prefix=environ.get("QUEUE_PREFIX", cls.queue_prefix),
            batch_size=_int(environ, "SEND_BATCH_SIZE", cls.batch_size),
            lease_seconds=_int(environ, "SEND_LEASE_SECONDS", cls.lease_seconds),
            record_every=max(1, _int(environ, "SEND_RECORD_EVERY", cls.record_every)),
            clock_interval=_float(environ, "CLOCK_INTERVAL_SECONDS", cls.clock_interval),
            max_send_attempts=_int(environ, "SEND_MAX_ATTEMPTS", cls.max_send_attempts),
            retry_base_seconds=_int(environ, "SEND_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            error_pause_threshold=_float(
                environ, "SEND_ERROR_PAUSE_THRESHOLD", cls.error_pause_threshold
            ),
            smtp_max_connections=_int(environ, "SMTP_MAX_CONNECTIONS", cls.smtp_max_connections),
            smtp_max_rate=_float(environ, "SMTP_MAX_RATE", cls.smtp_max_rate),
            dkim_selector=environ.get("DKIM_SELECTOR") or None,
            dkim_domain=environ.get("DKIM_DOMAIN") or None,
            dkim_private_key=environ.get("DKIM_PRIVATE_KEY") or None,
            dkim_ed25519_selector=environ.get("DKIM_ED25519_SELECTOR") or None,
            dkim_ed25519_private_key=environ.get("DKIM_ED25519_PRIVATE_KEY") or None,
            ses_topic_arns=tuple(
                arn.strip() for arn in environ.get("SES_TOPIC_ARNS", "").split(",") if arn.strip()
            ),
            webhook_secret=environ.get("WEBHOOK_SECRET") or None,
            soft_bounce_limit=_int(environ, "SOFT_BOUNCE_LIMIT", cls.soft_bounce_limit),
            letters_per_target_per_hour=_int(
                environ, "LETTERS_PER_TARGET_PER_HOUR", cls.letters_per_target_per_hour
            ),
            max_import_bytes=_int(environ, "MAX_IMPORT_BYTES", cls.max_import_bytes),
            import_writers=max(1, _int(environ, "IMPORT_WRITERS", cls.import_writers)),
            import_retention_hours=_float(
                environ, "IMPORT_RETENTION_HOURS", cls.import_retention_hours
            ),
            staff_login_rate=_rate(environ, "STAFF_LOGIN_RATE", cls.staff_login_rate),
            public_form_rate_per_ip=_rate(
                environ, "PUBLIC_FORM_RATE_PER_IP", cls.public_form_rate_per_ip
            ),
            public_form_rate_per_campaign=_rate(
                environ, "PUBLIC_FORM_RATE_PER_CAMPAIGN", cls.public_form_rate_per_campaign
            ),
            public_form_min_seconds=_float(
                environ, "PUBLIC_FORM_MIN_SECONDS", cls.public_form_min_seconds
            ),
        )
        settings.smtp  # noqa: B018 - parse now so a bad SMTP_URL fails at start-up
        if settings.is_production:
            settings.check_production()
        return settings

    def check_production(self) -> None:
        """Refuse to run production on development defaults."""
        problems = []
        if self.secret_keys == (DEV_SECRET,) or any(len(k) < 32 for k in self.secret_keys):
            problems.append("SECRET_KEYS must hold secrets of at least 32 characters")
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL must point at PostgreSQL")
        if not is_public_https_url(self.base_url):
            # RFC 8058 one-click unsubscribe needs an https URL that supporters can reach.
            problems.append("BASE_URL must be the public https address supporters reach")
        if problems:
            raise ConfigError("Refusing to start in production: " + "; ".join(problems))


def is_public_https_url(url: str) -> bool:
    """Say whether `url` is https on a host the public can reach (not this machine or a LAN)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return False
    if NUMERIC_HOST.fullmatch(host):
        # Browsers and resolvers still read inet_aton's forms (127.1, 0x7f.1, 2130706433), and
        # an all-numeric name is never a public domain (no top-level domain is numeric).
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
        return address.is_global
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a domain name
