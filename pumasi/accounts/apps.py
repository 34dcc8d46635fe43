"""Django app configuration for pumasi.accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "pumasi.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
