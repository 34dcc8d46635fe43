"""Django app configuration for pumasi.cocreation."""

from django.apps import AppConfig


class CocreationConfig(AppConfig):
    name = "pumasi.cocreation"
    label = "cocreation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the signed inbound event `production.status` (issue 6) with the platform.
        from pumasi.cocreation import inbound_design  # noqa: F401
