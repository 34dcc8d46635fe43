"""Django app configuration for pumasi.market."""

from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "pumasi.market"
    label = "market"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the signed inbound events (stock, shipping) with the platform.
        from pumasi.market import inbound  # noqa: F401
