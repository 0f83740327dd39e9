"""Vigilo settings: one module, read from the environment. Defaults give the embedded mode (SQLite, in-process).

Every `VIGILO_*` setting is listed in docs/operations.md.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

from exporters.config import destinations_from_env
from vigilo_project.env import env_bool, env_float, env_int, env_parsed, env_str
from vigilo_project.netpolicy import policy_setting

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
    "drf_spectacular_sidecar",
    "evaluators",
    "outbox",
    "runs",
    "online",
    "exporters",
    "api",
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
# Connections are kept between requests and tasks (VIGILO_DB_CONN_MAX_AGE seconds, 0: one per request) and checked
# before reuse: a new PostgreSQL connection costs more than the live sync path's whole evaluation.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _default_db),
        conn_max_age=env_int("VIGILO_DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Threads of the embedded worker share the file: wait for locks instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    # A file, not shared-cache memory, for tests: threads then wait on locks instead of failing at once.
    DATABASES["default"]["TEST"] = {"NAME": str(VIGILO_DATA_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# --- API (api/) -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.ReadScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.NewestFirst",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 50,
}
# Run creation per token, e.g. "60/min" or "1000/hour".
VIGILO_RUN_CREATE_RATE = env_str("VIGILO_RUN_CREATE_RATE", "60/min")
# Datasets and components up to 64 MiB; larger bodies are a 413 in the error envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("VIGILO_MAX_UPLOAD_BYTES", 64 << 20, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
# Throttling counts in the cache: per process in the embedded mode (LocMemCache).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "vigilo"}}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vigilo API",
    "DESCRIPTION": "Evaluation runs for LLM agents: datasets, profiles, evaluators, runs, verdicts. "
    "Every request needs `Authorization: Bearer <token>` (see `manage.py vigilo_token`).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RunStateEnum": "runs.models.Run.State",
        "GateEnum": "runs.models.Run.Gate",
        "EvaluatorVersionStateEnum": "evaluators.models.EvaluatorVersion.State",
    },
}

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
# The largest case (a dataset line; an agent's output): measured at 64 MiB, a Python guest runs out of memory on
# 4 MiB of small JSON values, so datasets get 1 MiB. docs/operations.md has the numbers.
VIGILO_MAX_CASE_BYTES = env_int("VIGILO_MAX_CASE_BYTES", 1 << 20, minimum=1024)
VIGILO_SANDBOX_CONCURRENCY = env_int("VIGILO_SANDBOX_CONCURRENCY", os.cpu_count() or 2, minimum=1)
VIGILO_COMPONENT_CACHE_SIZE = env_int("VIGILO_COMPONENT_CACHE_SIZE", 32, minimum=1)
# Wasmtime's pooling allocator: instance slots reused instead of mapped and unmapped per invocation.
VIGILO_SANDBOX_POOLING = env_bool("VIGILO_SANDBOX_POOLING", True)
# Of each pooled linear memory, how much is reset in place (memset) instead of handed back to the kernel.
VIGILO_SANDBOX_KEEP_RESIDENT_KB = env_int("VIGILO_SANDBOX_KEEP_RESIDENT_KB", 16 << 10, minimum=0)

# --- Runs, leases, outbox -------------------------------------------------------------------------------
VIGILO_CHUNK_SIZE = env_int("VIGILO_CHUNK_SIZE", 100, minimum=1)
VIGILO_LEASE_SECONDS = env_int("VIGILO_LEASE_SECONDS", 120, minimum=2)
VIGILO_MAX_RECOVERIES = env_int("VIGILO_MAX_RECOVERIES", 3, minimum=0)
VIGILO_STALE_DISPATCH_SECONDS = env_int("VIGILO_STALE_DISPATCH_SECONDS", 600, minimum=1)
VIGILO_OUTBOX_MAX_ATTEMPTS = env_int("VIGILO_OUTBOX_MAX_ATTEMPTS", 10, minimum=1)
VIGILO_OUTBOX_BATCH = env_int("VIGILO_OUTBOX_BATCH", 2000, minimum=1)
VIGILO_OUTBOX_CLAIM_SECONDS = env_int("VIGILO_OUTBOX_CLAIM_SECONDS", 30, minimum=1)

# --- Live evaluation (online/, docs/live.md) ----------------------------------------------------------------
# The largest event payload accepted (its JSON, in bytes).
VIGILO_ONLINE_MAX_EVENT_BYTES = env_int("VIGILO_ONLINE_MAX_EVENT_BYTES", 64 << 10, minimum=256)
# A pending event older than this is dispatched again (its message was lost); evaluating it stays exactly once.
VIGILO_ONLINE_STALE_SECONDS = env_int("VIGILO_ONLINE_STALE_SECONDS", 120, minimum=5)
# The longest a long-poll for corrections waits (`wait=` is capped at this).
VIGILO_ONLINE_POLL_MAX_S = env_float("VIGILO_ONLINE_POLL_MAX_S", 30.0, minimum=0.0)
# Webhook deliveries: per attempt, and attempts before a delivery is dead (the admin retries dead ones).
VIGILO_WEBHOOK_TIMEOUT_S = env_float("VIGILO_WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1)
VIGILO_WEBHOOK_MAX_ATTEMPTS = env_int("VIGILO_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
# The AMQP consumer (`manage.py online_consume`): events taken per batch, and the longest a batch waits to fill.
VIGILO_ONLINE_CONSUME_BATCH = env_int("VIGILO_ONLINE_CONSUME_BATCH", 200, minimum=1)
VIGILO_ONLINE_CONSUME_WAIT_S = env_float("VIGILO_ONLINE_CONSUME_WAIT_S", 0.05, minimum=0.001)

# --- Exports (docs/exporters.md) ------------------------------------------------------------------------
# Destinations: VIGILO_EXPORT_<KIND>_URL enables one (kinds: otlp, phoenix, langfuse, braintrust, langsmith), with
# its secrets (<...>_API_KEY etc., or <...>_FILE) and options; read once here, so a bad value stops the process.
VIGILO_EXPORT_DESTINATIONS = destinations_from_env()
# A batch refused with 408/429/5xx is retried with exponential backoff and jitter, dead after this many attempts
# (a receiver that does not answer at all is waited for, never counted). The admin retries dead batches.
VIGILO_EXPORT_MAX_ATTEMPTS = env_int("VIGILO_EXPORT_MAX_ATTEMPTS", 10, minimum=1)
VIGILO_EXPORT_BACKOFF_BASE_S = env_float("VIGILO_EXPORT_BACKOFF_BASE_S", 0.5, minimum=0.0)
VIGILO_EXPORT_BACKOFF_MAX_S = env_float("VIGILO_EXPORT_BACKOFF_MAX_S", 60.0, minimum=0.0)
# A relay claims this many batches a pass, holds them at most this long, and drains for at most this long a task.
VIGILO_EXPORT_CLAIM_BATCHES = env_int("VIGILO_EXPORT_CLAIM_BATCHES", 20, minimum=1)
VIGILO_EXPORT_CLAIM_SECONDS = env_int("VIGILO_EXPORT_CLAIM_SECONDS", 120, minimum=5)
VIGILO_EXPORT_PASS_SECONDS = env_float("VIGILO_EXPORT_PASS_SECONDS", 5.0, minimum=0.1)

# --- Celery (distributed mode) --------------------------------------------------------------------------
# Work messages and relay ticks live in durable queues; a message is acked only after its task returned
# (acks_late), one at a time per process (prefetch 1). A worker that dies loses nothing: its chunk's lease
# expires and the reaper re-dispatches it (bounded by VIGILO_MAX_RECOVERIES), so task_reject_on_worker_lost
# stays off (redelivering a message that crashed its worker would loop).
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
    for name in ("executions", "online", "exports", "outbox", "default")
)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_DEFAULT_EXCHANGE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = {
    "runs.process_chunk": {"queue": "executions"},
    "outbox.relay": {"queue": "outbox"},
    "runs.reap_leases": {"queue": "outbox"},
    "online.*": {"queue": "online"},
    "exporters.*": {"queue": "exports"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
# Every publish waits for the broker's ack (a nack or a dropped connection raises instead of losing the message).
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("VIGILO_BROKER_CONNECT_TIMEOUT_S", 4.0, minimum=0.1)
# Publishing from request/worker code (not the relay) retries a little, never forever.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}
# A running chunk keeps going if the broker connection drops; its ack then fails and the message is redelivered,
# which is a no-op (the chunk is completed or leased).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_CONCURRENCY = env_int("VIGILO_WORKER_CONCURRENCY", os.cpu_count() or 2, minimum=1)
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("VIGILO_TASK_EVENTS", True)  # for Flower: received, started, done
# A `task-sent` event per dispatched task is one more broker message the relay must publish and have confirmed:
# it costs the relay 40% of its throughput (docs/operations.md). Flower shows tasks from the workers' events
# without it, and a backlog shows in Vigilo's own metrics (pending chunks, relay lag): off unless asked for.
CELERY_TASK_SEND_SENT_EVENT = env_bool("VIGILO_TASK_SENT_EVENTS", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# One chunk's work must stay far below RabbitMQ's consumer_timeout (30 min by default; docker/compose.yml sets
# 1 h): past the soft limit the task stops and its lease expires, past the hard limit the process is replaced.
VIGILO_CHUNK_TIME_LIMIT_S = env_int("VIGILO_CHUNK_TIME_LIMIT_S", 600, minimum=10)
# SIGTERM: a chunk in progress gets this long to complete, then it is released for another worker.
VIGILO_SHUTDOWN_GRACE_S = env_float("VIGILO_SHUTDOWN_GRACE_S", 20.0, minimum=0.0)
# The relay's per-message publish (confirm wait included) and broker connect are bounded by this.
VIGILO_PUBLISH_TIMEOUT_S = env_float("VIGILO_PUBLISH_TIMEOUT_S", 5.0, minimum=0.1)
# A relay task drains due rows batch after batch for at most this long, then yields to the next beat tick.
VIGILO_RELAY_MAX_SECONDS = env_float("VIGILO_RELAY_MAX_SECONDS", 5.0, minimum=0.1)
# /healthz waits this long for a worker to answer a ping.
VIGILO_HEALTH_PING_TIMEOUT_S = env_float("VIGILO_HEALTH_PING_TIMEOUT_S", 1.0, minimum=0.1)
CELERY_BEAT_SCHEDULE = {
    # Ticks expire: after a broker or worker outage, stale ticks are dropped instead of run in a burst.
    "relay-outbox": {"task": "outbox.relay", "schedule": 1.0, "options": {"expires": 10}},
    "reap-leases": {"task": "runs.reap_leases", "schedule": 5.0, "options": {"expires": 30}},
    "reap-online": {"task": "online.reap", "schedule": 10.0, "options": {"expires": 30}},
    "deliver-exports": {"task": "exporters.deliver", "schedule": 1.0, "options": {"expires": 10}},
}
CELERY_BEAT_SCHEDULE_FILENAME = env_str("VIGILO_BEAT_SCHEDULE_FILE", str(VIGILO_DATA_DIR / "celerybeat-schedule"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("VIGILO_LOG_LEVEL", "WARNING")},
}

# --- Model capability (LLM-as-judge): evaluators/model_broker.py, docs/agent-evaluators.md -------------------
# VIGILO_MODEL_PROVIDERS: JSON object, logical model name -> OpenAI-compatible provider, e.g.
# {"judge-default": {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY",
#   "model": "gpt-4o-mini", "price_in_per_mtok": 0.15, "price_out_per_mtok": 0.6}}
# (or VIGILO_MODEL_PROVIDERS_FILE). Keys themselves never go here: `api_key_env` names the variable holding one.
import json  # noqa: E402

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

try:
    VIGILO_MODEL_PROVIDERS = json.loads(env_str("VIGILO_MODEL_PROVIDERS", "{}") or "{}")
except ValueError as _exc:
    raise ImproperlyConfigured(f"VIGILO_MODEL_PROVIDERS is not valid JSON: {_exc}") from None
if not isinstance(VIGILO_MODEL_PROVIDERS, dict) or not all(
    isinstance(_p, dict) and isinstance(_p.get("base_url"), str) and isinstance(_p.get("model"), str)
    for _p in VIGILO_MODEL_PROVIDERS.values()
):
    raise ImproperlyConfigured(
        "VIGILO_MODEL_PROVIDERS must map logical model names to objects with string 'base_url' and 'model'"
    )
# Per HTTP attempt; a model call never waits past its invocation's deadline whatever this says.
VIGILO_MODEL_TIMEOUT_S = env_float("VIGILO_MODEL_TIMEOUT_S", 30.0, minimum=0.1)
# Retries after the first attempt, for 429, 5xx and connection failures (backoff honours Retry-After).
VIGILO_MODEL_MAX_RETRIES = env_int("VIGILO_MODEL_MAX_RETRIES", 3, minimum=0)
# Model requests in flight at once per process.
VIGILO_MODEL_CONCURRENCY = env_int("VIGILO_MODEL_CONCURRENCY", 4, minimum=1)
# Entries of the in-process response cache (see docs/agent-evaluators.md).
VIGILO_MODEL_CACHE_SIZE = env_int("VIGILO_MODEL_CACHE_SIZE", 2048, minimum=0)
# How long a deterministic answer is shared between worker processes through the database; 0: not shared.
VIGILO_MODEL_CACHE_TTL_S = env_int("VIGILO_MODEL_CACHE_TTL_S", 7 * 24 * 3600, minimum=0)
# --- end of the model capability block --------------------------------------------------------------------------

# --- Network policy of every outgoing call (agent targets, model providers): vigilo_project/netpolicy.py --------
# "default": a call may go only where it is configured to (a model call to the providers above, an agent call to
# its run's target), never to a link-local or cloud metadata address. Or "allow-all", "deny-all", or a JSON object
# {"allow": [host, *.domain, IP or CIDR, each optionally :port]}. docs/operations.md has the rules.
VIGILO_NETWORK_POLICY = env_parsed(
    "VIGILO_NETWORK_POLICY", "default", partial(policy_setting, source="VIGILO_NETWORK_POLICY")
)
