"""The WSGI entry point (gunicorn `vigilo_project.wsgi`, and `manage.py runserver` through WSGI_APPLICATION)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")
application = get_wsgi_application()

# Only now is the app registry ready for what the server runtime imports (models).
from vigilo_project.server import server_runtime_start  # noqa: E402

server_runtime_start()
