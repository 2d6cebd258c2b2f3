"""Shared fixtures: test settings, a loopback-only network guard, factories, and the browser."""

import os
import socket

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from the
# test itself are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_GATEWAYS = {"default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {}}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AXES_ENABLED = True
    from smsplatform.celery import app

    app.conf.task_always_eager = True
    from campaigns.gateways import locmem

    locmem.outbox.clear()
    yield
    app.conf.task_always_eager = False


_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0") or host.startswith("/")
    ):
        raise RuntimeError(f"Test tried to reach {address!r}: only loopback is allowed.")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any connection outside loopback fails the test (STYLE.md, Tests)."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (CI does).")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture
def password():
    return "correct-horse-battery-9"


@pytest.fixture
def user(db, password):
    from tests.factories import UserFactory

    return UserFactory(password=password)


@pytest.fixture
def other_user(db, password):
    from tests.factories import UserFactory

    return UserFactory(password=password)


@pytest.fixture
def client_logged(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def browser_login(live_server, page, password):
    """Log ``user`` in through the real login form; returns the page."""

    def login(user):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.account_id)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return login


def _service_missing(reason: str):
    """Skip on the zero-setup default; fail when the run requires the real services (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1: this test must run here)")
    pytest.skip(reason)


@pytest.fixture
def require_postgres(settings):
    """For tests that need PostgreSQL (real concurrent transactions, COPY)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        _service_missing("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def redis_url(settings):
    """A reachable Redis URL (the broker's), for real Celery workers and shared rate caps."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        _service_missing("needs Redis: set CELERY_BROKER_URL=redis://...")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is configured but unreachable: {exc}")
    return url
