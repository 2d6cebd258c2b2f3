"""Settings, read from the environment (twelve-factor).

Zero-setup default: SQLite and kombu's filesystem broker under ``var/``, console email, the SMS
simulator. Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS``,
``EMAIL_URL`` and ``SMS_GATEWAYS``; see README.md for the full list.
"""

import json
import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import schedule
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="django-insecure-development-only-key-do-not-use-in-production")
else:
    SECRET_KEY = env("SECRET_KEY", default="")
    if not SECRET_KEY and not TESTING:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
    SECRET_KEY = SECRET_KEY or "test-only-secret-key-" + "x" * 40

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "phonenumber_field",
    "axes",
    "smsplatform",
    "accounts",
    "billing",
    "addressbook",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "smsplatform.urls"
WSGI_APPLICATION = "smsplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "smsplatform.context_processors.platform",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.AccountBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 3)

# Login throttling (ACC-10): lock an account ID + IP pair after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
DEFAULT_PHONE_REGION = env("DEFAULT_PHONE_REGION", default="FR")
PHONENUMBER_DEFAULT_REGION = DEFAULT_PHONE_REGION
PHONENUMBER_DB_FORMAT = "E164"

# --- Static files (whitenoise under gunicorn; no CDN) ------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not (DEBUG or TESTING)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL: "consolemail://" (default: links show in the terminal), "filemail:///path", or
# "smtp+tls://user:password@host:587".
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="SMS Platform <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "control", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # In and out must be the same folder so every process sees every message.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "polling_interval": 0.2,
    }
else:
    # Sends are claimed from the database, not scheduled by ETA (FACTS.md), so one hour is ample.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "smsplatform.tasks.heartbeat", "schedule": schedule(timedelta(seconds=10))},
}
# A beat tick older than this means worker or beat is down (/healthz answers 503).
HEARTBEAT_MAX_AGE = timedelta(seconds=env.int("HEARTBEAT_MAX_AGE", default=60))

# --- SMS gateways (like CACHES: aliases -> backend + options) -----------------------------------
SMS_GATEWAYS = (
    json.loads(os.environ["SMS_GATEWAYS"])
    if os.environ.get("SMS_GATEWAYS")
    else {
        # The simulator is the demo carrier (outcomes by last digit: README, "The SMS simulator").
        "default": {"BACKEND": "campaigns.gateways.simulator.Gateway", "OPTIONS": {"DELAY": 2, "RATE": 50}},
    }
)

# --- Business settings ----------------------------------------------------------------------
SUPPORT_PHONE = env("SUPPORT_PHONE", default="+33 4 91 00 00 00")
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@localhost")
SIGNUP_BONUS_CREDITS = Decimal(env("SIGNUP_BONUS_CREDITS", default="20"))
DEMO_CREDITS = Decimal(env("DEMO_CREDITS", default="1000"))

# --- Security -------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Accounts (ACC-1..ACC-10) -----------------------------------------------------------------
# Email confirmation links (sign-up, email change) expire after this many seconds.
EMAIL_CONFIRMATION_TIMEOUT = env.int("EMAIL_CONFIRMATION_TIMEOUT", default=60 * 60 * 24 * 3)
EMAIL_RESEND_COOLDOWN = timedelta(seconds=env.int("EMAIL_RESEND_COOLDOWN_SECONDS", default=60))
# Mobile certification codes: lifetime and the wait before another code can be requested.
MOBILE_CODE_TTL = timedelta(minutes=env.int("MOBILE_CODE_TTL_MINUTES", default=10))
MOBILE_CODE_RESEND_COOLDOWN = timedelta(seconds=env.int("MOBILE_CODE_RESEND_COOLDOWN_SECONDS", default=60))
MOBILE_CODES_PER_DAY = env.int("MOBILE_CODES_PER_DAY", default=5)
# Login throttling counts failures per account ID whatever its letter case (ACC-10).
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
# Per-request time zone and language of the logged-in account; logs blocked accounts out.
MIDDLEWARE.append("accounts.middleware.AccountMiddleware")

# campaigns (composer): the opt-out sentence "Append the STOP mention" adds (SND-9); empty = "STOP: <support phone>".
SMS_STOP_MENTION = env("SMS_STOP_MENTION", default="")

# --- Billing (BIL-5, BIL-7) -----------------------------------------------------------------
# Card payments are offered only when both Stripe keys are set.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Tests point the real stripe library at a local stub; empty means Stripe's own API.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
SELLER_NAME = env("SELLER_NAME", default="SMS Platform SAS")
SELLER_ADDRESS = env("SELLER_ADDRESS", default="1 rue de la République\n13001 Marseille\nFrance")
SELLER_VAT_NUMBER = env("SELLER_VAT_NUMBER", default="FR00000000000")
BANK_IBAN = env("BANK_IBAN", default="FR76 0000 0000 0000 0000 0000 000")
BANK_BIC = env("BANK_BIC", default="XXXXFRPPXXX")
CHEQUE_PAYEE = env("CHEQUE_PAYEE", default=SELLER_NAME)
CHEQUE_ADDRESS = env("CHEQUE_ADDRESS", default=SELLER_ADDRESS)
VAT_RATE = Decimal(env("VAT_RATE", default="20"))

# --- Sending pipeline (campaigns/pipeline.py, campaigns/tasks.py) ---------------------------------
CELERY_BEAT_SCHEDULE["dispatch-due-campaigns"] = {
    "task": "campaigns.tasks.dispatch_due_campaigns",
    "schedule": schedule(timedelta(seconds=2)),
}
CELERY_BEAT_SCHEDULE["requeue-stale-claims"] = {
    "task": "campaigns.tasks.requeue_stale_claims",
    "schedule": schedule(timedelta(seconds=30)),
}
CELERY_BEAT_SCHEDULE["squash-message-counts"] = {
    "task": "campaigns.tasks.squash_message_counts",
    "schedule": schedule(timedelta(seconds=30)),
}
# A submit claim older than this without a carrier id is re-queued (must exceed the task time limit).
SMS_SUBMIT_LEASE_SECONDS = env.int("SMS_SUBMIT_LEASE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 60)
# Carriers posting receipts/replies sign the raw body with this secret (README, "Carrier callbacks").
SMS_CALLBACK_SECRET = env("SMS_CALLBACK_SECRET", default="" if not DEBUG else "development-callback-secret")
SMS_CALLBACK_MAX_AGE = 300

# Address book imports (ADR-3): the largest file accepted, in bytes.
ADDRESSBOOK_IMPORT_MAX_BYTES = env.int("ADDRESSBOOK_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
# Imports whose name-search indexing (queued after the merge) was lost are queued again.
CELERY_BEAT_SCHEDULE["requeue-import-search-indexing"] = {
    "task": "addressbook.tasks.contact_imports_search_requeue",
    "schedule": schedule(timedelta(minutes=10)),
}
