"""Django app configuration for pumasi.platform."""

from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "pumasi.platform"
    label = "platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # These modules register event handlers (in-process and job-side) when imported.
        from pumasi.platform import notifications, oidc, webhooks  # noqa: F401
