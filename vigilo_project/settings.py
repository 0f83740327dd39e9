"""Vigilo settings: one module, read from the environment. Defaults give the embedded mode (SQLite, in-process).

Every `VIGILO_*` setting is listed in docs/configuration.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from vigilo_project.env import env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "vigilo-embedded-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [h for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "evaluators",
    "outbox",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vigilo_project.urls"
WSGI_APPLICATION = "vigilo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Where the embedded database and evaluator artifacts live, and where built/compiled components are cached
# (the cache is keyed by content, so several data dirs can share it).
VIGILO_DATA_DIR = Path(env_str("VIGILO_DATA_DIR", str(BASE_DIR / "var")))
VIGILO_CACHE_DIR = Path(env_str("VIGILO_CACHE_DIR", str(BASE_DIR / "var" / "cache")))

_default_db = f"sqlite:///{VIGILO_DATA_DIR / 'vigilo.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=0)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Threads of the embedded worker share the file: wait for locks instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "Vigilo API", "VERSION": "1.0.0"}

# --- Modes -------------------------------------------------------------------------------------------
# Without a broker URL Vigilo runs embedded: the relay hands messages to an in-process thread pool.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
VIGILO_EMBEDDED = env_bool("VIGILO_EMBEDDED", not CELERY_BROKER_URL)
VIGILO_EMBEDDED_WORKERS = env_int("VIGILO_EMBEDDED_WORKERS", 2, minimum=1)

# --- Sandbox limits (defaults from the design; a profile binding may override each) --------------------
VIGILO_MEMORY_MB = env_int("VIGILO_MEMORY_MB", 64, minimum=16)
VIGILO_FUEL = env_int("VIGILO_FUEL", 2_000_000_000, minimum=1)
VIGILO_TIMEOUT_S = env_float("VIGILO_TIMEOUT_S", 5.0, minimum=0.01)
VIGILO_MAX_LOG_MESSAGES = env_int("VIGILO_MAX_LOG_MESSAGES", 128, minimum=0)
VIGILO_MAX_LOG_BYTES = env_int("VIGILO_MAX_LOG_BYTES", 4096, minimum=1)
VIGILO_MAX_OUTPUT_BYTES = env_int("VIGILO_MAX_OUTPUT_BYTES", 1 << 20, minimum=1024)
VIGILO_SANDBOX_CONCURRENCY = env_int("VIGILO_SANDBOX_CONCURRENCY", os.cpu_count() or 2, minimum=1)
VIGILO_COMPONENT_CACHE_SIZE = env_int("VIGILO_COMPONENT_CACHE_SIZE", 32, minimum=1)

# --- Runs, leases, outbox -------------------------------------------------------------------------------
VIGILO_CHUNK_SIZE = env_int("VIGILO_CHUNK_SIZE", 100, minimum=1)
VIGILO_LEASE_SECONDS = env_int("VIGILO_LEASE_SECONDS", 120, minimum=2)
VIGILO_MAX_RECOVERIES = env_int("VIGILO_MAX_RECOVERIES", 3, minimum=0)
VIGILO_STALE_DISPATCH_SECONDS = env_int("VIGILO_STALE_DISPATCH_SECONDS", 600, minimum=1)
VIGILO_OUTBOX_MAX_ATTEMPTS = env_int("VIGILO_OUTBOX_MAX_ATTEMPTS", 10, minimum=1)
VIGILO_OUTBOX_BATCH = env_int("VIGILO_OUTBOX_BATCH", 500, minimum=1)
VIGILO_OUTBOX_CLAIM_SECONDS = env_int("VIGILO_OUTBOX_CLAIM_SECONDS", 30, minimum=1)

# --- Celery (distributed mode) --------------------------------------------------------------------------
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "runs.process_chunk": {"queue": "executions"},
    "outbox.relay": {"queue": "outbox"},
    "runs.reap_leases": {"queue": "outbox"},
}
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {"task": "outbox.relay", "schedule": 1.0},
    "reap-leases": {"task": "runs.reap_leases", "schedule": 5.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("VIGILO_LOG_LEVEL", "WARNING")},
}
