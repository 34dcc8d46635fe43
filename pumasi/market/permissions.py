"""Who may do what in the shop: organisers run it, a designer acts on their own product only
while the production right granted to them (a platform ScopedGrant) is active."""

from __future__ import annotations

from pumasi.communities import permissions as community_permissions
from pumasi.communities.permissions import RANK, role_of
from pumasi.core.errors import NotFound, PermissionDenied
from pumasi.market.models import Order, Product, ShopSettings


def is_organiser(user, community) -> bool:
    return community_permissions.can(user, "edit", community)


def require_organiser(user, community) -> None:
    community_permissions.require(user, "edit", community)


def shop_settings(community) -> ShopSettings:
    found = ShopSettings.objects.filter(community=community).first()
    return found or ShopSettings(community=community)


def may_see_shop(user, community) -> bool:
    return shop_settings(community).public_shop or role_of(user, community) is not None


def require_see_shop(user, community) -> None:
    if not may_see_shop(user, community):
        raise NotFound("No such community.")


def may_see_product(user, product: Product) -> bool:
    if product.status == Product.Status.LISTED or product.status == Product.Status.ENDED:
        return may_see_shop(user, product.community)
    return is_organiser(user, product.community) or has_production_right(user, product)


def has_production_right(user, product: Product) -> bool:
    """The designer's right on this one product: granted at selection, withdrawn at end of sale."""
    from pumasi.platform.models import ScopedGrant

    if user is None or not user.is_authenticated or product.designer_id != user.pk:
        return False
    if product.status == Product.Status.ENDED or role_of(user, product.community) is None:
        return False
    return ScopedGrant.objects.filter(
        user=user, community_id=product.community_id, scope=product.grant_scope, revoked_at__isnull=True
    ).exists()


def require_designer_or_organiser(user, product: Product) -> None:
    """Organisers always; the designer only while their production right is active."""
    if is_organiser(user, product.community) or has_production_right(user, product):
        return
    if not may_see_product(user, product):
        raise NotFound("No such product.")
    raise PermissionDenied("Only the organisers, or the designer while they hold the production right, may do this.")


def may_see_order(user, order: Order, token: str | None = None) -> bool:
    if token and token == order.access_token:
        return True
    if user is None or not user.is_authenticated:
        return False
    if order.buyer_id == user.pk or is_organiser(user, order.community):
        return True
    return order.product.designer_id == user.pk and has_production_right(user, order.product)


def is_member(user, community) -> bool:
    role = role_of(user, community)
    return role is not None and RANK[role] >= RANK["member"]
