"""Django app configuration for pumasi.insight."""

from django.apps import AppConfig


class InsightConfig(AppConfig):
    name = "pumasi.insight"
    label = "insight"
    default_auto_field = "django.db.models.BigAutoField"
