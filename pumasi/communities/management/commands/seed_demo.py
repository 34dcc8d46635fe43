"""`pumasi demo`: seed both scenarios (idempotent: a second run adds nothing) and print the logins."""

from __future__ import annotations

from importlib import import_module

from django.core.management.base import BaseCommand

from pumasi.communities import demo

# Capabilities that add demo data after the people and communities exist, in this order.
CAPABILITY_SEEDERS = ["ledger", "sharing", "cocreation", "market", "governance", "platform", "insight"]


class Command(BaseCommand):
    help = "Seed the demo: Doksan 4-dong (Happy Parking Street) and the clothing maker's community."

    def handle(self, *args, **options):
        world = demo.seed()
        for name in CAPABILITY_SEEDERS:
            try:
                module = import_module(f"pumasi.{name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"pumasi.{name}.demo":
                    raise
                continue
            module.seed(world)
        self.stdout.write(self.style.SUCCESS("Demo ready. Sign in at http://127.0.0.1:8000/accounts/login/ with:"))
        for email, who, community in world.logins:
            self.stdout.write(f"  {email:32} {who:36} {community}")
        self.stdout.write(f"  password for all: {demo.DEMO_PASSWORD}")
