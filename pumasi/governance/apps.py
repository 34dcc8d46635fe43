"""Django app configuration for pumasi.governance."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "pumasi.governance"
    label = "governance"
    default_auto_field = "django.db.models.BigAutoField"
