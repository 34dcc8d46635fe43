"""Who may do what with a community's ledger, built on the community roles.

- read the books (accounts, transactions, statements, split rules, escrows, pools): member and up
- the transparency page: observer and up; non-members only the public totals, when the
  community's ledger settings allow it
- post manual entries, create accounts, split rules, pools, decide claims, settle: committee and up
- change the ledger settings (the platform cap): organiser
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from pumasi.communities.models import Role
from pumasi.communities.permissions import RANK, role_of
from pumasi.core.errors import NotFound, PermissionDenied

LEAST = {
    "view_transparency": Role.OBSERVER,
    "view_books": Role.MEMBER,
    "participate": Role.MEMBER,
    "manage": Role.COMMITTEE,
    "configure": Role.ORGANISER,
}


def can(user, action: str, community) -> bool:
    role = role_of(user, community)
    return role is not None and RANK[role] >= RANK[LEAST[action]]


def require(user, action: str, community) -> None:
    if can(user, action, community):
        return
    if role_of(user, community) is None:
        raise NotFound(_("No such community."))
    raise PermissionDenied(_("Your role in %(name)s does not allow this.") % {"name": community.name})


def may_see_public_totals(user, community) -> bool:
    from pumasi.ledger.selectors import ledger_settings

    return can(user, "view_transparency", community) or ledger_settings(community).public_totals
