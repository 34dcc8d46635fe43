"""The demo world for API-wide tests (fuzzing, authorization matrix): every capability's demo data,
seeded as `pumasi demo` does, and path parameters of any OpenAPI operation filled from it."""

from __future__ import annotations

import re
from importlib import import_module

from django.apps import apps

from pumasi.communities import demo
from pumasi.communities.management.commands.seed_demo import CAPABILITY_SEEDERS

# Path parameter -> (model, lookup from the model to its community, attribute sent in the path).
# A new kind of path parameter needs one line here; the matrix test says which one is missing.
PATH_OBJECTS = {
    "workspace_id": ("cocreation.Workspace", "community", "pk"),
    "product_id": ("market.Product", "community", "pk"),
    "survey_id": ("cocreation.Survey", "community", "pk"),
    "number": ("market.Order", "community", "number"),
    "idea_id": ("cocreation.Idea", "community", "pk"),
    "board_id": ("cocreation.IdeaBoard", "community", "pk"),
    "call_id": ("cocreation.DesignCall", "community", "pk"),
    "design_id": ("cocreation.Design", "community", "pk"),
    "document_id": ("cocreation.WorkspaceDocument", "workspace__community", "pk"),
    "application_id": ("cocreation.WorkspaceApplication", "workspace__community", "pk"),
    "milestone_id": ("cocreation.Milestone", "workspace__community", "pk"),
    "thread_id": ("cocreation.WorkspaceThread", "workspace__community", "pk"),
    "order_id": ("cocreation.ProductionOrder", "community", "pk"),
    "pool_id": ("ledger.Pool", "community", "pk"),
    "claim_id": ("ledger.PoolClaim", "pool__community", "pk"),
    "escrow_id": ("ledger.Escrow", "community", "pk"),
    "rule_id": ("ledger.SplitRule", "community", "pk"),
    "transaction_id": ("ledger.Transaction", "community", "pk"),
    "settlement_id": ("ledger.Settlement", "community", "pk"),
    "membership_id": ("communities.Membership", "community", "pk"),
    "invitation_id": ("communities.Invitation", "community", "pk"),
    "webhook_id": ("platform.WebhookSubscription", "community", "pk"),
    "delivery_id": ("platform.WebhookDelivery", "subscription__community", "pk"),
    "client_id": ("platform.OidcClient", "community", "pk"),
    "grant_id": ("platform.ScopedGrant", "community", "pk"),
    "code": ("sharing.Resource", "zone__community", "code"),
    "booking_id": ("sharing.Booking", "resource__zone__community", "pk"),
}
# Path parameters that name no object but a fixed word (the first one the operation accepts).
PATH_WORDS = {"action": "cancel"}
MISSING_ID = 987654321  # an object that exists nowhere


def seed_world() -> demo.DemoWorld:
    world = demo.seed()
    for name in CAPABILITY_SEEDERS:
        try:
            module = import_module(f"pumasi.{name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"pumasi.{name}.demo":
                raise
            continue
        module.seed(world)
    return world


def add_missing_objects(world: demo.DemoWorld) -> None:
    """What the demo data lacks but API operations address, so the authorization matrix reaches real
    objects: in Doksan an invitation, an escrow, a pool claim, a client application, and a webhook
    with one delivery. Made the quickest way that gives valid rows (services where cheap)."""
    from pumasi.communities.services import create_invitation
    from pumasi.ledger import services as ledger
    from pumasi.ledger.models import Pool, PoolClaim, PoolMember
    from pumasi.platform import oidc
    from pumasi.platform.models import WebhookDelivery, WebhookSubscription

    doksan, people = world.doksan, world.people
    chief, buyer, seller, moderator = people["chief"], people["holder01"], people["holder02"], people["activist"]
    create_invitation(actor=chief, community=doksan)
    ledger.open_escrow(actor=buyer, community=doksan, seller=seller, moderator=moderator, amount=5000,
                       idempotency_key="world:escrow", memo="World escrow")
    pool = Pool.objects.filter(community=doksan).order_by("pk").first()
    claimant = PoolMember.objects.filter(pool=pool).order_by("pk").first().user
    PoolClaim.objects.create(pool=pool, claimant=claimant, amount=1000, description="World claim",
                             evidence="claims/world.png")
    oidc.register_client(actor=chief, community=doksan, name="World shop", redirect_uris=["https://shop.example/cb"])
    subscription = WebhookSubscription.objects.create(community=doksan, url="https://hooks.example/world",
                                                      event_types=["*"], secret="whsec_d29ybGQ=", created_by=chief)
    WebhookDelivery.objects.create(subscription=subscription, message_id="msg_world", event_type="world.test",
                                   body="{}", status=WebhookDelivery.Status.FAILED, attempts=1)


def path_params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def is_zone_path(path: str) -> bool:
    """Whether the {slug} of this path names a sharing zone rather than a community."""
    return "/zones/{slug}" in path or "/sharing/ingest/" in path


def zone_slug(community) -> str | None:
    zone = apps.get_model("sharing", "Zone").objects.filter(community=community).order_by("pk").first()
    return zone.slug if zone else None


def fill_path(path: str, community) -> tuple[str, bool] | None:
    """The path with its parameters taken from objects of `community`: (url, all_found).

    Parameters are chosen from the innermost object outwards, so a document and its workspace
    belong together. Objects not in the demo data get an id that exists nowhere (all_found False).
    None when the path has a parameter nobody mapped."""
    values: dict[str, object] = {}
    found_all = True
    names = path_params(path)
    for name in reversed(names):
        if name in values:
            continue
        if name == "slug":
            values[name] = zone_slug(community) if is_zone_path(path) else community.slug
            if values[name] is None:
                found_all = False
                values[name] = "no-such-zone"
            continue
        if name in PATH_WORDS:
            values[name] = PATH_WORDS[name]
            continue
        if name not in PATH_OBJECTS:
            return None
        label, to_community, attribute = PATH_OBJECTS[name]
        model = apps.get_model(label)
        query = model.objects.filter(**{to_community: community})
        for outer in names[: names.index(name)]:  # an outer parameter already fixed by a chosen child
            field = outer.removesuffix("_id")
            if outer in values and outer.endswith("_id") and any(f.name == field for f in model._meta.fields):
                query = query.filter(**{f"{field}_id": values[outer]})
        obj = query.order_by("pk").first()
        if obj is None:
            found_all = False
            values[name] = MISSING_ID if name.endswith("_id") else "missing"
            continue
        values[name] = getattr(obj, attribute)
        for outer in names[: names.index(name)]:
            field = outer.removesuffix("_id")
            if outer.endswith("_id") and outer not in values and hasattr(obj, f"{field}_id"):
                values[outer] = getattr(obj, f"{field}_id")
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path), found_all
