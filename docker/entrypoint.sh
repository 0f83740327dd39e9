#!/bin/sh
# One image, several roles. Each role runs the same command as the native `make` targets (docs/operations.md).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
  setup)
    # Migrate, then build (cached in the image) and publish the bundled evaluators. Safe to re-run.
    exec python manage.py vigilo_setup "$@"
    ;;
  web)
    # Threads: a live agent's long-poll for corrections (docs/live.md) holds its thread while it waits.
    exec gunicorn vigilo_project.wsgi \
      --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --worker-class gthread --threads "${WEB_THREADS:-8}" \
      --timeout "${WEB_TIMEOUT:-60}" \
      --access-logfile - "$@"
    ;;
  worker)
    # SIGTERM (docker stop): warm shutdown; a chunk in progress completes within VIGILO_SHUTDOWN_GRACE_S or is
    # released for another worker. Keep stop_grace_period above that grace.
    exec celery -A vigilo_project worker -Q executions,online,exports,outbox,default \
      --concurrency "${VIGILO_WORKER_CONCURRENCY:-2}" -l "${CELERY_LOG_LEVEL:-info}" "$@"
    ;;
  beat)
    # Exactly one beat per deployment: it sends the relay tick every second and the lease reaper every 5 s.
    exec celery -A vigilo_project beat -l "${CELERY_LOG_LEVEL:-info}" \
      -s "${VIGILO_DATA_DIR:-/data}/celerybeat-schedule" "$@"
    ;;
  flower)
    exec celery -A vigilo_project flower --port="${FLOWER_PORT:-5555}" "$@"
    ;;
  consumer)
    # The AMQP consumer of live events (vigilo.online); only needed when agents publish events over AMQP.
    exec python manage.py online_consume "$@"
    ;;
  relay)
    # Optional: a standalone relay loop (beat + workers already relay; useful when debugging a deployment).
    exec python manage.py relay_outbox "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
