"""WSGI entry point: Django itself (the ASGI router in pumasi.asgi wraps this)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")
application = get_wsgi_application()
