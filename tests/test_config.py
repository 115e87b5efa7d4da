from pathlib import Path

import pytest

from app.config import DEV_SECRET, PROJECT_ROOT, ConfigError, Settings

STRONG_SECRET = "s" * 40
PRODUCTION = {
    "CLARION_ENV": "production",
    "SECRET_KEYS": STRONG_SECRET,
    "DATABASE_URL": "postgresql://clarion@db.internal/clarion",
    "BASE_URL": "https://act.example.org",
}


def test_defaults_make_a_working_local_setup():
    settings = Settings.from_env({})
    assert settings.env == "development" and not settings.is_production
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var' / 'clarion.db'}"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.base_url == "http://127.0.0.1:5000"
    assert settings.secret_keys == (DEV_SECRET,)
    assert settings.capture_dir == PROJECT_ROOT / "var" / "mailbox"
    smtp = settings.smtp
    assert (smtp.host, smtp.port, smtp.use_ssl, smtp.starttls) == ("127.0.0.1", 1025, False, False)
    assert smtp.username is None and smtp.password is None


def test_plain_smtp_url_defaults_to_port_25():
    smtp = Settings.from_env({"SMTP_URL": "smtp://relay.example.org"}).smtp
    assert (smtp.host, smtp.port, smtp.use_ssl, smtp.starttls) == (
        "relay.example.org",
        25,
        False,
        False,
    )


def test_smtps_url_uses_implicit_tls_on_465():
    smtp = Settings.from_env({"SMTP_URL": "smtps://relay.example.org"}).smtp
    assert (smtp.port, smtp.use_ssl, smtp.starttls) == (465, True, False)


def test_starttls_and_credentials_with_percent_escapes():
    url = (
        "smtp://mailer%40example.org:p%40ss%3Aw%2Frd@relay.example.org:587?starttls=1&timeout=12.5"
    )
    smtp = Settings.from_env({"SMTP_URL": url}).smtp
    assert smtp.port == 587 and smtp.starttls and not smtp.use_ssl
    assert smtp.username == "mailer@example.org"
    assert smtp.password == "p@ss:w/rd"
    assert smtp.timeout == 12.5


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.example.org",
        "relay.example.org:25",
        "smtp://relay.example.org:notaport",
        "smtp://relay.example.org:99999",
        "smtp://relay.example.org?timeout=soon",
    ],
)
def test_bad_smtp_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="SMTP_URL"):
        Settings.from_env({"SMTP_URL": url})


def test_secret_keys_are_split_on_commas_and_trimmed():
    settings = Settings.from_env({"SECRET_KEYS": " new-key , old-key,,"})
    assert settings.secret_keys == ("new-key", "old-key")


def test_blank_secret_keys_fall_back_to_the_dev_secret():
    assert Settings.from_env({"SECRET_KEYS": " , "}).secret_keys == (DEV_SECRET,)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db/clarion", "postgresql+psycopg://u:p@db/clarion"),
        ("postgresql://u@db:5433/clarion", "postgresql+psycopg://u@db:5433/clarion"),
        ("postgresql+psycopg://u@db/clarion", "postgresql+psycopg://u@db/clarion"),
        ("sqlite:////tmp/clarion.db", "sqlite:////tmp/clarion.db"),
    ],
)
def test_database_url_is_normalised_to_psycopg(given, expected):
    assert Settings.from_env({"DATABASE_URL": given}).database_url == expected


def test_base_url_loses_trailing_slash_and_paths_are_read():
    settings = Settings.from_env(
        {
            "BASE_URL": "https://act.example.org/",
            "CAPTURE_DIR": "/tmp/mail",
            "IMPORT_DIR": "/tmp/in",
        }
    )
    assert settings.base_url == "https://act.example.org"
    assert settings.capture_dir == Path("/tmp/mail")
    assert settings.import_dir == Path("/tmp/in")


def test_numeric_settings_are_parsed_and_bad_numbers_rejected():
    settings = Settings.from_env({"SEND_BATCH_SIZE": "300", "SMTP_MAX_RATE": "12.5"})
    assert settings.batch_size == 300 and settings.smtp_max_rate == 12.5
    with pytest.raises(ConfigError, match="SEND_BATCH_SIZE"):
        Settings.from_env({"SEND_BATCH_SIZE": "lots"})
    with pytest.raises(ConfigError, match="SMTP_MAX_RATE"):
        Settings.from_env({"SMTP_MAX_RATE": "fast"})


def test_production_starts_with_real_secrets_postgres_and_public_url():
    settings = Settings.from_env(PRODUCTION)
    assert settings.is_production
    assert settings.database_url == "postgresql+psycopg://clarion@db.internal/clarion"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"SECRET_KEYS": ""}, "SECRET_KEYS"),
        ({"SECRET_KEYS": DEV_SECRET}, "SECRET_KEYS"),
        ({"SECRET_KEYS": f"{STRONG_SECRET},short"}, "SECRET_KEYS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////srv/clarion.db"}, "DATABASE_URL"),
        ({"BASE_URL": "http://127.0.0.1:5000"}, "BASE_URL"),
        ({"BASE_URL": "http://localhost:5000"}, "BASE_URL"),
        ({"BASE_URL": "http://act.example.org"}, "BASE_URL"),
        # The host is judged by what it names, not how it is spelt.
        ({"BASE_URL": "https://LOCALHOST"}, "BASE_URL"),
        ({"BASE_URL": "https://localhost."}, "BASE_URL"),
        ({"BASE_URL": "https://act.localhost"}, "BASE_URL"),
        ({"BASE_URL": "https://[::1]"}, "BASE_URL"),
        ({"BASE_URL": "https://[::ffff:127.0.0.1]"}, "BASE_URL"),
        ({"BASE_URL": "https://127.0.0.2"}, "BASE_URL"),
        ({"BASE_URL": "https://0.0.0.0"}, "BASE_URL"),
        ({"BASE_URL": "https://127.1"}, "BASE_URL"),
        ({"BASE_URL": "https://0x7f.1"}, "BASE_URL"),
        ({"BASE_URL": "https://2130706433"}, "BASE_URL"),
        ({"BASE_URL": "https://10.0.0.8"}, "BASE_URL"),
        ({"BASE_URL": "https://192.168.1.20:8443"}, "BASE_URL"),
        ({"BASE_URL": "https://169.254.169.254"}, "BASE_URL"),
        ({"BASE_URL": "https://[fe80::1]"}, "BASE_URL"),
        ({"BASE_URL": "https://[fd12::1]"}, "BASE_URL"),
        ({"BASE_URL": "https://999.1"}, "BASE_URL"),
        ({"BASE_URL": "https://act.example.org:notaport"}, "BASE_URL"),
        ({"BASE_URL": "https://"}, "BASE_URL"),
    ],
)
def test_production_refuses_development_defaults(override, complaint):
    with pytest.raises(ConfigError, match=complaint):
        Settings.from_env({**PRODUCTION, **override})


def test_production_lists_every_problem_at_once():
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env({"CLARION_ENV": "production"})
    message = str(excinfo.value)
    assert all(name in message for name in ("SECRET_KEYS", "DATABASE_URL", "BASE_URL"))


@pytest.mark.parametrize(
    "base_url",
    ["https://act.example.org", "https://act.example.org:8443", "https://93.184.215.14"],
)
def test_production_accepts_public_https_addresses(base_url):
    assert Settings.from_env({**PRODUCTION, "BASE_URL": base_url}).base_url == base_url


def test_import_body_limit_is_configurable():
    assert Settings.from_env({}).max_import_bytes == 512 * 1024 * 1024
    assert Settings.from_env({"MAX_IMPORT_BYTES": "1048576"}).max_import_bytes == 1048576
