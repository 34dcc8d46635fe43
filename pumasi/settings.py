"""Django settings for pumasi, all driven by PUMASI_* environment variables (see README)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse

import dj_database_url
from django.utils.translation import gettext_lazy as _

from pumasi import config

BASE_DIR = config.BASE_DIR
SECRET_KEY = config.secret_key()
DEBUG = config.env_bool("PUMASI_DEBUG", False)
ALLOWED_HOSTS = config.allowed_hosts()
CSRF_TRUSTED_ORIGINS = [
    f"{scheme}://{host}" for host in ALLOWED_HOSTS if not host.startswith(".") for scheme in ("http", "https")
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.kakao",
    "allauth.socialaccount.providers.naver",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "oauth2_provider",
    "huey.contrib.djhuey",
    "pumasi.accounts",
    "pumasi.communities",
    "pumasi.platform",
    "pumasi.ledger",
    "pumasi.sharing",
    "pumasi.cocreation",
    "pumasi.market",
    "pumasi.governance",
    "pumasi.insight",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "pumasi.accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "pumasi.core.middleware.DomainErrorMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "pumasi.accounts.middleware.OrganiserMfaMiddleware",
]

ROOT_URLCONF = "pumasi.urls"
WSGI_APPLICATION = "pumasi.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "pumasi" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "pumasi.communities.context.community_switcher",
                "pumasi.platform.context.unread_notifications",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {"default": dj_database_url.parse(config.database_url(), conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections are kept (CONN_MAX_AGE 60, per server thread): a new SQLite connection re-reads
    # the whole schema on its first statement, ~5-10 ms, which made every DB-touching request
    # several times slower than one that does not (bench/serving).
    # WAL lets readers run beside the single writer; IMMEDIATE makes every write
    # transaction take the write lock at BEGIN, which serialises writes across
    # processes instead of failing half-way with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(config.var_dir() / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("PUMASI_TEST_DATABASE_NAME", "test_pumasi")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, jobs and live events go through it when configured -------------------
REDIS_URL = config.redis_url()
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pumasi"}}

HUEY_IMMEDIATE = config.env_bool("PUMASI_JOBS_IMMEDIATE", False)
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "pumasi",
        "url": REDIS_URL,
        "immediate": HUEY_IMMEDIATE,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "pumasi",
        "filename": str(config.var_dir() / "jobs.sqlite3"),
        "immediate": HUEY_IMMEDIATE,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }

MQTT_URL = config.mqtt_url()

# --- Accounts ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("PUMASI_EMAIL_VERIFICATION", "optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_ADAPTER = "pumasi.accounts.adapter.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "pumasi.accounts.forms.SignupExtraForm"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
# Social login: only the providers configured through PUMASI_* variables show a button.
from pumasi.accounts.social import providers_from_env  # noqa: E402

SOCIALACCOUNT_PROVIDERS = providers_from_env()
SOCIALACCOUNT_ADAPTER = "pumasi.accounts.adapter.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never take over an account just because an e-mail matches
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "pumasi"

# --- E-mail -------------------------------------------------------------------------------
_email = urlparse(config.email_url())
if _email.scheme == "smtp" or _email.scheme == "smtps":
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 25)
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_SSL = _email.scheme == "smtps"
    EMAIL_USE_TLS = parse_qs(_email.query).get("tls", ["0"])[0] in {"1", "true"}
elif _email.scheme == "memory":
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("PUMASI_FROM_EMAIL", "pumasi <noreply@localhost>")

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "pumasi" / "locale"]
TIME_ZONE = config.time_zone()
USE_I18N = True
USE_TZ = True

# --- Files --------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = config.var_dir() / "static"
STATICFILES_DIRS = [BASE_DIR / "pumasi" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = config.var_dir() / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

# --- OpenID Connect provider (the open-platform issue fills in clients and scopes) ----------
from pumasi.platform.keys import oidc_private_key  # noqa: E402

OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": oidc_private_key(),
    "OIDC_ISS_ENDPOINT": os.environ.get("PUMASI_OIDC_ISSUER", ""),
    "OAUTH2_VALIDATOR_CLASS": "pumasi.platform.oidc.PumasiOAuth2Validator",
    "SCOPES_BACKEND_CLASS": "pumasi.platform.oidc.PumasiScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 86400,
    "ROTATE_REFRESH_TOKEN": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
}
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"  # named so our migration can depend on it

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if config.env_bool("PUMASI_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API ---------------------------------------------------------------------------------------
PUMASI_API_RATE_LIMIT = int(os.environ.get("PUMASI_API_RATE_LIMIT", "600"))  # requests per token per minute
# Domain events older than this are pruned daily (the audit log is the permanent record).
PUMASI_EVENT_RETENTION_DAYS = int(os.environ.get("PUMASI_EVENT_RETENTION_DAYS", "180"))
PUMASI_SITE_URL = os.environ.get("PUMASI_SITE_URL", "http://localhost:8000").rstrip("/")  # links in mail and feeds
NINJA_PAGINATION_PER_PAGE = 50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PUMASI_LOG_LEVEL", "WARNING")},
    "loggers": {"pumasi": {"level": os.environ.get("PUMASI_LOG_LEVEL", "INFO")}},
}
