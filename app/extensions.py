"""Extension objects shared by the whole application, bound in `create_app`."""

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings
from app.queues import redis_key

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = Api()
# No default limits: the public action forms declare theirs (app/campaigns/views.py). The
# moving window refuses a burst however it falls across minute boundaries. swallow_errors: when
# Redis is down the forms stay open (the error is logged) rather than turn every POST into a 500.
limiter = Limiter(
    key_func=get_remote_address,
    strategy="moving-window",
    headers_enabled=True,
    swallow_errors=True,
)


def init_limiter(app: Flask, settings: Settings) -> None:
    """Bind the rate limiter to the app, counting in the app's Redis."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    # A Redis that does not answer must not hold up the form for long before we fail open.
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1}
    )
    app.config.setdefault("RATELIMIT_KEY_PREFIX", redis_key(settings, "limits"))
    limiter.init_app(app)
    _skip_limiter_hooks_on(app, UNLIMITED_HOT_ENDPOINTS)


# The open pixel and tracked clicks carry no limits but are the busiest routes: the limiter's
# request hooks alone cost them about a fifth of their throughput (bench/bench_tracking.py).
UNLIMITED_HOT_ENDPOINTS = frozenset({"tracking.open_pixel", "tracking.click"})


def _skip_limiter_hooks_on(app: Flask, endpoints: frozenset[str]) -> None:
    """Leave the limiter's before/after/teardown hooks out of requests to `endpoints`.

    Limits declared with `@limiter.limit`/`shared_limit` are checked by their decorator, and
    these endpoints declare none, so skipping the hooks there changes no limit.
    """
    owner = limiter

    def is_limiter_hook(hook) -> bool:
        target = getattr(hook, "func", hook)  # after_request holds a functools.partial
        return getattr(hook, "__self__", None) is owner or (
            getattr(target, "__qualname__", "").startswith("Limiter.")
            and owner in getattr(hook, "args", ())
        )

    def skip_before(hook):
        def before():
            return None if request.endpoint in endpoints else hook()

        return before

    def skip_after(hook):
        def after(response):
            return response if request.endpoint in endpoints else hook(response)

        return after

    def skip_teardown(hook):
        def teardown(exc=None):
            return None if request.endpoint in endpoints else hook(exc)

        return teardown

    for registry, wrap in (
        (app.before_request_funcs, skip_before),
        (app.after_request_funcs, skip_after),
        (app.teardown_request_funcs, skip_teardown),
    ):
        hooks = registry.get(None, [])
        registry[None] = [wrap(h) if is_limiter_hook(h) else h for h in hooks]
