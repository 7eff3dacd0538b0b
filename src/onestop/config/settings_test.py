"""Settings for the test suite: the production module with a throwaway data folder."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("ONESTOP_DATA_DIR", tempfile.mkdtemp(prefix="onestop-test-"))
if os.environ.get("DATABASE_URL"):
    os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
    os.environ.setdefault("ONESTOP_ENCRYPTION_KEY", "bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4=")

from onestop.config.settings import *  # noqa: F403

# Fast hashing keeps the suite quick; production uses Argon2 (see settings.py).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HUEY = {**HUEY, "immediate": True}  # noqa: F405
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
