"""Settings for the handoff console.

This is the only module that reads the environment. Every variable is documented in
README.md ("Configuration").
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# One documented way to give every command (manage.py, daphne, circus, cron) the same
# environment: a ``.env`` file in the project root, or the file named by ENV_FILE. Values
# already in the environment win over the file (python-dotenv, override=False).
ENV_FILE = os.environ.get("ENV_FILE") or str(BASE_DIR / ".env")
if Path(ENV_FILE).is_file():
    load_dotenv(ENV_FILE, override=False)
elif os.environ.get("ENV_FILE"):
    raise ImproperlyConfigured(f"ENV_FILE={ENV_FILE} does not exist.")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required unless DJANGO_DEBUG=1 (see README)."
        )
    SECRET_KEY = "insecure-debug-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
    "drf_spectacular_sidecar",
    "handoffs.memory",
    "handoffs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "console.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "console.boundary.BoundaryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every time on a console page in the agent's own zone (Agent.time_zone).
    "handoffs.desk.timezones.AgentTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by authenticate() into a page.
    "axes.middleware.AxesMiddleware",
]

# The bot API (/v1/, /api/v1/, /health) runs through its own handler
# (console/api_handler.py): no session, CSRF, user, messages, htmx, time zone or lockout
# middleware (a bot call uses none of them, and each cost two thread hops per request);
# the hooks that still apply run inline on the event loop. Its requests' synchronous
# parts run on API_THREADS long-lived threads, which keep their SQLite connection.
API_MIDDLEWARE = ["console.api_handler.ApiEdgeMiddleware"]
API_EDGE_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "console.boundary.BoundaryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.api_handler.ApiCSPMiddleware",
]
# Threads: 2 on SQLite, 4 on PostgreSQL. SQLite writes one at a time and its calls are
# short, so threads running at once only take turns at the GIL (and at the write lock)
# and stretch every request: on SQLite requests take turns instead (API_SPILL_MS), and
# the second thread is for a call that has run API_SPILL_MS alone (an export), so it
# doesn't hold up every other bot (console/api_handler.py, TurnGate; README, "Half the
# cost per request"). PostgreSQL round trips release the GIL: 4 threads at once
# (API_SPILL_MS 0) overlap them.
API_THREADS = env_int("API_THREADS", 4 if os.environ.get("DATABASE_URL") else 2)
API_SPILL_MS = env_int("API_SPILL_MS", 0 if os.environ.get("DATABASE_URL") else 50)
# The serving process freezes its start-up heap so full garbage collections don't walk
# it (console/gc_tuning.py): they paused every request for up to ~150 ms.
GC_FREEZE = env_bool("GC_FREEZE", True)

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

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
                "handoffs.desk.context.console",
            ],
        },
    },
]

# Database: PostgreSQL when DATABASE_URL is set, else SQLite in WAL mode. SQLite takes
# the write lock at BEGIN (IMMEDIATE) so concurrent writers queue on the busy timeout
# instead of failing with "database is locked" when a read transaction upgrades.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"))
SQLITE_MMAP_SIZE = env_int("SQLITE_MMAP_SIZE", 1 << 30)
# The serving process checkpoints the WAL on a background thread every this many seconds
# instead of inside a request's COMMIT (console/db/sqlite3/checkpoint.py); 0: SQLite's own.
SQLITE_CHECKPOINT_SECS = float(os.environ.get("SQLITE_CHECKPOINT_SECS") or 1.0)
# PostgreSQL connections are pooled per process (psycopg-pool, Django's OPTIONS["pool"]):
# at most DATABASE_POOL_MAX_SIZE open, DATABASE_POOL_MIN_SIZE kept, a caller waits up to
# DATABASE_POOL_TIMEOUT seconds for one. DATABASE_POOL_MAX_SIZE=0 turns pooling off
# (then DATABASE_CONN_MAX_AGE applies). Sizing: docs/deployment.md.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 16)
DATABASE_POOL_MIN_SIZE = env_int("DATABASE_POOL_MIN_SIZE", 1)
DATABASE_POOL_TIMEOUT = float(os.environ.get("DATABASE_POOL_TIMEOUT") or 10)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0)
        )
    }
    if DATABASE_POOL_MAX_SIZE > 0 and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django requires 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(DATABASE_POOL_MIN_SIZE, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": DATABASE_POOL_TIMEOUT,
        }
        # No per-checkout health check (CONN_HEALTH_CHECKS adds a round trip to every
        # database hop of every socket): psycopg-pool drops a connection that failed
        # when it is returned, so a PostgreSQL restart costs one failed call per pooled
        # connection.
    DATABASES["default"]["TEST"] = {"NAME": f"test_handoffs_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "console.db.sqlite3",  # queues writers in-process
            "NAME": SQLITE_PATH,
            # Kept open: Channels' consumers run their database calls on one long-lived
            # thread, which otherwise opens (and PRAGMA-initialises) a file connection per
            # call; a socket connect costs ~40 % less CPU. A request's own thread closes
            # its connection when the request ends (console/db/sqlite3).
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
                    # Reads through a memory map of the file (the OS page cache, shared by
                    # every connection) instead of a read() into each connection's own
                    # cache: a recall reads ~220 rows scattered through a large table.
                    f"PRAGMA mmap_size={SQLITE_MMAP_SIZE};"
                ),
            },
            # Tests use a real file so WAL, IMMEDIATE and the busy timeout behave
            # exactly as in production (the in-memory test database does not); one per
            # test process, so parallel runs don't share it.
            "TEST": {"NAME": str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Memory copies of chat messages are applied after commit by a per-process thread
# ("thread"), or on the committing thread ("inline"; the test suite uses it, as its
# test transaction is invisible to other threads). handoffs/delivery/outbox.py Kicker.
OUTBOX_KICK = os.environ.get("OUTBOX_KICK", "thread")
if OUTBOX_KICK not in {"thread", "inline"}:
    raise ImproperlyConfigured("OUTBOX_KICK must be 'thread' or 'inline'")

REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis connections per process are bounded independently of the number of sockets
# (docs/deployment.md, "Sizing"): the channel layer's pool (group_add/discard, sends; a
# caller waits up to REDIS_POOL_TIMEOUT s for a free connection instead of failing) plus
# one blocking reader; the cache's pool, shared by every thread of the process.
REDIS_LAYER_POOL_SIZE = env_int("REDIS_LAYER_POOL_SIZE", 32)
REDIS_CACHE_POOL_SIZE = env_int("REDIS_CACHE_POOL_SIZE", 16)
REDIS_POOL_TIMEOUT = float(os.environ.get("REDIS_POOL_TIMEOUT") or 10)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "handoffs.realtime.layers.PooledRedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as the
                # layer's blocking BZPOPMIN: the read times out first, the consumer dies
                # and idle sockets drop every few seconds (channels_redis#422). Read
                # longer than the 5 s pop; connect fails fast.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 2,
                        "max_connections": REDIS_LAYER_POOL_SIZE,
                        "timeout": REDIS_POOL_TIMEOUT,
                    }
                ],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            # One blocking pool per process for every thread's cache object
            # (handoffs/realtime/redis_cache.py).
            "BACKEND": "handoffs.realtime.redis_cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "max_connections": REDIS_CACHE_POOL_SIZE,
                "timeout": REDIS_POOL_TIMEOUT,
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
            },
        }
    }
else:
    # Channels' in-memory layer minus its O(sockets) sweep on every receive
    # (handoffs/realtime/layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "handoffs.realtime.layers.EmbeddedChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Socket presence (handoffs/realtime/registry.py): each serving process heartbeats every
# PRESENCE_HEARTBEAT_SECS; a process silent for PRESENCE_TTL_SECS is dead, its sockets
# leave their groups and its agents go offline at the next sweep (every heartbeat).
PRESENCE_HEARTBEAT_SECS = float(os.environ.get("PRESENCE_HEARTBEAT_SECS") or 5)
PRESENCE_TTL_SECS = float(os.environ.get("PRESENCE_TTL_SECS") or 15)
# Reconnect catch-up: a socket that says what it saw last (?after=) gets only what it
# missed, unless more than CATCHUP_GAP_LIMIT items were missed (then a full snapshot).
CATCHUP_GAP_LIMIT = env_int("CATCHUP_GAP_LIMIT", 200)
# Timers (SLA and unanswered alerts) and the presence sweep run inside the serving process
# (handoffs/realtime/background.py) when it is the only one, so their pushes reach pages
# served by the in-memory channel layer; run_worker then skips the timers. Default: on in
# embedded mode (no REDIS_URL), off in scale-out (run_worker does them).
SERVING_TIMERS = env_bool("SERVING_TIMERS", not REDIS_URL)
# /metrics (Prometheus text format) answers only "Authorization: Bearer <METRICS_TOKEN>";
# unset, it answers 404.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is locked out for AXES_COOLOFF_MINUTES (429 and
# a page saying when to retry); admins unlock in admin ("Access attempts") or with
# `manage.py axes_reset` / `axes_reset_username NAME`. Covers /accounts/login/ and
# /admin/login/.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("DJANGO_PROXY_COUNT", 0) or None
AXES_VERBOSE = False

# Bot API keys: an address that sends this many wrong keys within the window (seconds)
# gets 429 with Retry-After for every key until the window ends (memory/key_guessing.py).
BOT_AUTH_FAILURE_LIMIT = env_int("BOT_AUTH_FAILURE_LIMIT", 20)
BOT_AUTH_FAILURE_WINDOW = env_int("BOT_AUTH_FAILURE_WINDOW", 60)
# Typing indicators a socket may forward per second (more are dropped, not errors).
TYPING_FRAMES_PER_SEC = float(os.environ.get("TYPING_FRAMES_PER_SEC") or 2)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "queue"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Requests up to the memory API's 10 MiB body limit are read; the API answers 413
# itself above its own limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024 + 1024

# The composer (README "Messages, saved replies and attachments"). A chat message's
# longest text, in characters (the composers count down to it, the API schema says it).
MESSAGE_MAX_CHARS = env_int("MESSAGE_MAX_CHARS", 10_000)
# Attachments: the largest file accepted (bytes), and how long a signed download link
# (handed to bots, webhooks and "copy link") stays valid, in seconds.
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
ATTACHMENT_LINK_MAX_AGE = env_int("ATTACHMENT_LINK_MAX_AGE", 600)
# Uploaded files live under MEDIA_ROOT (never served as static files: only through the
# rights-checking views of handoffs/attachments) unless ATTACHMENT_STORAGE=s3 stores
# them in an S3-compatible bucket through django-storages (pip install boto3).
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "/media-not-served/"
ATTACHMENT_STORAGE = os.environ.get("ATTACHMENT_STORAGE", "filesystem")
if ATTACHMENT_STORAGE == "filesystem":
    STORAGES["attachments"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": MEDIA_ROOT / "attachments",
            "base_url": None,
            "file_permissions_mode": 0o640,
            "directory_permissions_mode": 0o750,
        },
    }
elif ATTACHMENT_STORAGE == "s3":
    STORAGES["attachments"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("ATTACHMENT_S3_BUCKET", ""),
            "endpoint_url": os.environ.get("ATTACHMENT_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("ATTACHMENT_S3_REGION") or None,
            "access_key": os.environ.get("ATTACHMENT_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("ATTACHMENT_S3_SECRET_ACCESS_KEY") or None,
            "location": os.environ.get("ATTACHMENT_S3_PREFIX", "attachments"),
            # Private objects; the console streams them after its own rights check.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": ATTACHMENT_LINK_MAX_AGE,
            "file_overwrite": False,
        },
    }
    if not STORAGES["attachments"]["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("ATTACHMENT_STORAGE=s3 needs ATTACHMENT_S3_BUCKET (see README)")
else:
    raise ImproperlyConfigured("ATTACHMENT_STORAGE must be 'filesystem' or 's3'")

# Memory backend: embedded (served from this database) unless DAKERA_URL is set.
DAKERA_URL = os.environ.get("DAKERA_URL", "")
DAKERA_API_KEY = os.environ.get("DAKERA_API_KEY", "")
# Remote mode only (docs/remote-mode.md). Seconds to open a connection / to wait for an
# answer; retries after a failed connect, a 429/503, or (reads and recall/search only)
# a 5xx or timeout; the longest Retry-After waited for in a request (a longer one is
# passed to the caller, which queues); and how long calls fail at once after the server
# could not be reached (0 turns that off).
DAKERA_CONNECT_TIMEOUT = float(os.environ.get("DAKERA_CONNECT_TIMEOUT") or 2)
DAKERA_READ_TIMEOUT = float(os.environ.get("DAKERA_READ_TIMEOUT") or 10)
DAKERA_MAX_RETRIES = env_int("DAKERA_MAX_RETRIES", 2)
DAKERA_RETRY_AFTER_CAP = float(os.environ.get("DAKERA_RETRY_AFTER_CAP") or 5)
DAKERA_FAIL_FAST_SECS = float(os.environ.get("DAKERA_FAIL_FAST_SECS") or 5)

# Public base URL used in links handed to bots (customer chat links).
CONSOLE_PUBLIC_URL = os.environ.get("CONSOLE_PUBLIC_URL", "http://127.0.0.1:8000")

# The customer's copy: a resolved conversation's link stays readable (with the rating
# form) this many days; "email me a copy" is allowed this often per conversation.
TRANSCRIPT_RETENTION_DAYS = env_int("TRANSCRIPT_RETENTION_DAYS", 30)
TRANSCRIPT_EMAILS_PER_HOUR = env_int("TRANSCRIPT_EMAILS_PER_HOUR", 3)

# Email (transcript copies): printed to the console by default; SMTP by settings.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "support@localhost")

# The widget's example page (/demo/widget/) is served in demo mode only.
CONSOLE_DEMO_PAGES = env_bool("CONSOLE_DEMO_PAGES", DEBUG)
# The demo bot's key and webhook secret (manage.py demo_bot; manage.py demo sets them).
DEMO_BOT_KEY = os.environ.get("DEMO_BOT_KEY", "")
DEMO_BOT_SECRET = os.environ.get("DEMO_BOT_SECRET", "")

# Name of the team that receives handoffs addressed to an unknown target.
HANDOFF_DEFAULT_TEAM = os.environ.get("HANDOFF_DEFAULT_TEAM", "general")
# Offer routing (handoffs.lifecycle.offers): an agent who declined or missed a hop is
# not offered that hop again for this many seconds.
HANDOFF_OFFER_RETRY_SECS = int(os.environ.get("HANDOFF_OFFER_RETRY_SECS") or 120)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # django-axes logs every sign-in at INFO; lockouts still log as warnings.
        "axes": {"level": "WARNING"},
    },
}

# Production hardening. With DJANGO_DEBUG=0 the secure defaults apply and
# `manage.py check --deploy` is clean (tests/console/test_deploy_settings.py); behind a
# TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=1 (trusts
# X-Forwarded-Proto: https). Each can be turned off for a plain-HTTP trial deployment.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health checks answer plain HTTP on the internal network (load balancers).
SECURE_REDIRECT_EXEMPT = [r"^health(/live|/ready)?$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): scripts and styles from this origin only, no
# inline scripts or eval; style attributes stay allowed (bar widths on the floor and
# the report are data). Pages that may be framed set their own frame-ancestors.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
