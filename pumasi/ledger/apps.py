"""Django app configuration for pumasi.ledger."""

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "pumasi.ledger"
    label = "ledger"
    default_auto_field = "django.db.models.BigAutoField"
