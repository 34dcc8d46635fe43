"""Django's own ASGI handler over the same project, for the design record's comparison only."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
