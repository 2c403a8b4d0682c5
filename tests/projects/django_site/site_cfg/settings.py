"""Settings of the test project: DATABASES from the pgwarden policy named by $PGWARDEN_POLICY."""

import os

from pgwarden.contrib.django import database_settings

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "site_cfg.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "shop",
    "pgwarden.contrib.django_app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages",
                                                 "django.template.context_processors.request"]}}]
PGWARDEN_POLICY = os.environ["PGWARDEN_POLICY"]
DATABASES = {"default": database_settings(PGWARDEN_POLICY)}
# tests as the app role: the owner creates, migrates and hardens the test database (docs/django.md)
TEST_RUNNER = "pgwarden.contrib.django.TestRunner"
