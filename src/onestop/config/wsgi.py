"""WSGI entry point, served by granian (see `onestop web`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onestop.config.settings")
application = get_wsgi_application()
