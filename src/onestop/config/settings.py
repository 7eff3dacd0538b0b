"""Django settings, all read from the environment through onestop.config.env."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from onestop.config import env

CONFIG = env.load()

BASE_DIR = CONFIG.data_dir
DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = CONFIG.allowed_hosts
ONESTOP_PUBLIC_URL = CONFIG.public_url
ONESTOP_ENCRYPTION_KEY = CONFIG.encryption_key
ONESTOP_TRUSTED_PROXIES = CONFIG.trusted_proxies
ONESTOP_AUDIT_RETENTION_DAYS = CONFIG.audit_retention_days
ONESTOP_DATA_DIR = CONFIG.data_dir
ONESTOP_ATTACHMENT_MAX_BYTES = CONFIG.attachment_max_mb * 1024 * 1024

# Outgoing mail goes through one relay; without one it is written to the data folder's outbox.
DEFAULT_FROM_EMAIL = SERVER_EMAIL = CONFIG.mail_from
ONESTOP_SNMP_TRAP_LISTEN = CONFIG.snmp_trap_listen
ONESTOP_SNMP_ENGINE_ID = CONFIG.snmp_engine_id
EMAIL_TIMEOUT = 20
if CONFIG.smtp is not None:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CONFIG.smtp.host
    EMAIL_PORT = CONFIG.smtp.port
    EMAIL_HOST_USER = CONFIG.smtp.username
    EMAIL_HOST_PASSWORD = CONFIG.smtp.password
    EMAIL_USE_SSL = CONFIG.smtp.use_ssl
    EMAIL_USE_TLS = CONFIG.smtp.use_starttls
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(CONFIG.data_dir / "outbox")
# Uploads above this spill to a temporary file instead of memory; the size limit is separate.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
CSRF_TRUSTED_ORIGINS = [CONFIG.public_url]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "huey.contrib.djhuey",
    "axes",
    "csp",
    "ninja",
    "onestop.web",
    "onestop.core",
    "onestop.contracts",
    "onestop.notify",
    "onestop.servicedesk",
    "onestop.metrics",
    "onestop.assets",
    "onestop.monitoring",
]

MIDDLEWARE = [
    "onestop.core.middleware.TrustedProxyMiddleware",
    "onestop.core.api_base.ProblemJsonMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "onestop.core.middleware.UserLanguageMiddleware",
    "onestop.core.middleware.RequestContextMiddleware",
    "onestop.core.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "onestop.config.urls"
WSGI_APPLICATION = "onestop.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "onestop.core.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): lock a username from one address after repeated failures.
AXES_FAILURE_LIMIT = CONFIG.login_failure_limit
AXES_COOLOFF_TIME = CONFIG.login_lockout_minutes / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "onestop.core.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "onestop.core.middleware.lockout_response"
AXES_VERBOSE = False

LANGUAGE_CODE = CONFIG.language_code
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [str(__import__("pathlib").Path(__file__).resolve().parent.parent / "locale")]
USE_I18N = True
TIME_ZONE = CONFIG.time_zone
USE_TZ = True

STATIC_URL = "/static/"
# Charts are drawn by plotly.js, served from the installed plotly package (no CDN: customers'
# networks are often closed), as /static/plotly/plotly.min.js.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "onestop.config.staticfinders.PlotlyFinder",
]
STATIC_ROOT = str(CONFIG.data_dir / "static")
(CONFIG.data_dir / "static").mkdir(exist_ok=True)
MEDIA_URL = "/files/"
MEDIA_ROOT = str(CONFIG.media_dir)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Static files are served from the installed packages (htmx, swagger-ui) without a collect step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

HUEY = {
    "name": "onestop",
    "immediate": False,
    "consumer": {"workers": 2, "worker_type": "thread", "backoff": 1.15, "max_delay": 2.0},
}
if CONFIG.redis_url:
    HUEY.update({"huey_class": "onestop.core.queue.PriorityRedisHuey", "url": CONFIG.redis_url})
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.redis_url,
        }
    }
else:
    HUEY.update(
        {
            "huey_class": "onestop.core.queue.SqliteHuey",
            "filename": str(CONFIG.data_dir / "queue.sqlite3"),
        }
    )

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600
SESSION_COOKIE_SECURE = CONFIG.public_url_is_https
CSRF_COOKIE_SECURE = CONFIG.public_url_is_https
LANGUAGE_COOKIE_SECURE = CONFIG.public_url_is_https
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if CONFIG.public_url_is_https:
    SECURE_HSTS_SECONDS = 31536000

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # httpx logs every request's full URL at INFO, and robot URLs carry their access token.
        "httpx": {"level": "WARNING"},
        "huey": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}
