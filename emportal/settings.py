"""Settings for EM Portal, all from the environment.

One module for every deployment: the defaults give a single-machine install (SQLite
under var/, Redis on localhost); a lab scales out by setting DATABASE_URL, REDIS_URL
and the storage roots, not by editing code.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def envpath(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default).expanduser().resolve()


VAR_DIR = envpath("EMPORTAL_VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else generated once into var/ and kept."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
PRODUCTION = envbool("EMPORTAL_PRODUCTION", False)
ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, no CDN
    "channels",
    "emportal.jobs",
    "annotations",
    "annotations.reviews",
    "segmentation",
    "emportal.tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "emportal.middleware.AsyncWhiteNoiseMiddleware",  # WhiteNoise, kept async under Daphne
    "emportal.middleware.RequestLimitsMiddleware",  # JSON 413 and 404 before a view or the database
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "emportal.urls"
ASGI_APPLICATION = "emportal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "emportal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {% load vite_assets %}: the frontend's hashed bundles (emportal is not an app).
            "libraries": {"vite_assets": "emportal.vite_assets"},
        },
    },
]

# SQLite under var/ unless DATABASE_URL says otherwise; WAL mode is switched on at
# connection time (annotations.apps) so readers never block the stroke writer.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'emportal.sqlite3'}"),
        # Persistent connections: opening SQLite (and its PRAGMAs) per request costs more
        # than serving a tile. Health checks drop connections that went bad.
        conn_max_age=envint("DB_CONN_MAX_AGE", 300),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # A file, not :memory:, so the Celery worker started by the tests sees the test database;
    # one per test process, so two test runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_emportal_{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if envbool("EMPORTAL_FAST_PASSWORD_HASHER", False):
    # Test runs only (scripts/test.sh): hashing a password at full strength costs a
    # second per user, which the permission matrix would pay hundreds of times.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# frontend/dist is made by `npm run build` (scripts/setup.sh); absent until then.
STATICFILES_DIRS = [d for d in (BASE_DIR / "frontend" / "dist", BASE_DIR / "emportal" / "static") if d.is_dir()]
WHITENOISE_USE_FINDERS = True

# Where volumes (OME-Zarr), models and reports live, and the only folder that
# server-side imports may read from.
MEDIA_ROOT = envpath("MEDIA_ROOT", VAR_DIR / "media")
DATA_ROOT = envpath("DATA_ROOT", BASE_DIR.parent / "shared" / "data")
SHARED_DATA = envpath("EMPORTAL_SHARED_DATA", BASE_DIR.parent / "shared" / "data")
UPLOAD_MAX_BYTES = envint("EMPORTAL_UPLOAD_MAX_BYTES", 8 * 1024**3)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "uploads")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)


def _origins(name: str, default: str) -> list[str]:
    """Comma-separated web origins (scheme://host[:port]); refuses anything else."""
    origins = [o.strip() for o in envstr(name, default).split(",") if o.strip()]
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ValueError(f"{name}: {origin!r} is not an origin like https://host[:port]")
    return origins


# Web apps whose pages may read the stores over HTTP (/stores/, /api/volumes/<id>/store/):
# answers carry Access-Control-Allow-Origin for these origins alone, never with credentials.
EMPORTAL_CORS_ORIGINS = _origins("EMPORTAL_CORS_ORIGINS", "https://neuroglancer-demo.appspot.com")
# The Neuroglancer app that the viewer's "Open in Neuroglancer" opens.
EMPORTAL_NEUROGLANCER_URL = envstr("EMPORTAL_NEUROGLANCER_URL", "https://neuroglancer-demo.appspot.com/")

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
# Redis pub/sub, not the list-based core layer: events are fire-and-forget fan-outs (echoes,
# job progress) to the processes' socket hubs, so a PUBLISH does what the core layer needed
# ~15 commands for (group lookup, Lua send, receive with backup queue), which takes about a
# fifth off Daphne's CPU per stroke (docs/notes/benchmarks-2026-11-26.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # Pub/sub channels ignore the database number: the prefix keeps apart the apps (and
        # test runs) that share one Redis through different databases.
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"emportal.{urlsplit(REDIS_URL).path.strip('/') or '0'}"},
    }
}
# Per-process cache: login failure counts (one Daphne process by default).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A running job whose heartbeat is older than this is marked failed (its worker died).
# Jobs beat every 10 s and beat reaps every 20 s, so a dead job is failed within ~50 s.
JOB_STALE_SECONDS = envint("EMPORTAL_JOB_STALE_SECONDS", 30)
# A queued job older than this that no worker will take (a later job of its queue started,
# or the queue is idle) lost its queue message and is marked failed.
JOB_QUEUED_SECONDS = envint("EMPORTAL_JOB_QUEUED_SECONDS", 120)
# Torch threads of a segment block: the same on every worker, as a float's last bit depends on it.
SEGMENT_THREADS = envint("EMPORTAL_SEGMENT_THREADS", 1)
# A segment block claimed this long ago without a sign of life (claims are touched every few
# seconds while the block runs) belongs to a dead worker and is taken over.
SEGMENT_BLOCK_STALE_SECONDS = envint("EMPORTAL_SEGMENT_BLOCK_STALE_SECONDS", 120)
# Helper tasks a report job queues beside its own to measure its units of cells (0: the job's
# task measures every cell); a unit claimed this long ago without a sign of life is taken over;
# a unit holds cells in id order up to about this many voxels of work (see reports/units.py).
REPORT_HELPERS = envint("EMPORTAL_REPORT_HELPERS", 8)
REPORT_UNIT_STALE_SECONDS = envint("EMPORTAL_REPORT_UNIT_STALE_SECONDS", 120)
REPORT_UNIT_VOXELS = envint("EMPORTAL_REPORT_UNIT_VOXELS", 64 * 2**20)
# Helper tasks a cells job queues beside its own to run its fusion's key-slice intervals (0: the
# job's task runs them all). The cells job's methods that hold the volume whole (interior, flow,
# compare against truth) are refused above this many voxels; the default fusion runs slab by slab.
CELLS_HELPERS = envint("EMPORTAL_CELLS_HELPERS", 8)
CELLS_WHOLE_MAX_VOXELS = envint("EMPORTAL_CELLS_WHOLE_MAX_VOXELS", 512 * 2**20)

REST_FRAMEWORK = {
    # An API token first: a request that carries one is the token's user (no CSRF check, as
    # there is no ambient credential), and a request with none gets 401 with
    # "WWW-Authenticate: Token". The session (with its CSRF check) serves the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": ["emportal.tokens.authentication.ApiTokenAuthentication",
                                       "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies only (uploads name their own parsers), and a body nested too deeply is a 400
    "DEFAULT_PARSER_CLASSES": ["emportal.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "emportal.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EM Portal API",
    "DESCRIPTION": "Volumes, tiles, annotations, jobs and segmentation of FIB-SEM volumes.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "state" or "kind": name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "emportal.jobs.models.Job.State",
        "VolumeStateEnum": "annotations.models.Volume.State",
        "LayerKindEnum": "annotations.models.LabelLayer.Kind",
        "LabelClassKindEnum": "annotations.models.LabelClass.Kind",
        "ReviewStateEnum": "annotations.reviews.models.ReviewAssignment.State",
        "ReviewItemStateEnum": "annotations.reviews.models.ReviewItem.State",
        "ReviewItemKindEnum": "annotations.reviews.models.ReviewItem.Kind",
        "NotificationKindEnum": "annotations.reviews.models.Notification.Kind",
        "LayerWriteStateEnum": ["complete", "writing", "partial"],
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "emportal.schema.file_endpoints"],
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
