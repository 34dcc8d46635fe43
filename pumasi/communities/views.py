"""Community pages. Each view parses, asks the permission module, calls a service, renders."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pumasi.communities import permissions, selectors, services
from pumasi.communities.forms import CommunityForm, InvitationForm, RoleForm
from pumasi.core.errors import DomainError, NotFound
from pumasi.core.forms import add_domain_error
from pumasi.platform import selectors as platform_selectors
from pumasi.sharing import selectors as sharing_selectors


def _community(request, slug: str, action: str = "view"):
    try:
        return selectors.community_for(request.user, slug, action)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _refuse(request, error: DomainError):
    if isinstance(error, NotFound):
        raise Http404(error.message)
    messages.error(request, error.message)


def landing(request):
    mine = selectors.memberships_of(request.user) if request.user.is_authenticated else []
    return render(request, "communities/landing.html", {"memberships": mine})


@login_required
def create(request):
    form = CommunityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            community = services.create_community(actor=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The community was created."))
            return redirect("communities:home", community.slug)
    return render(request, "communities/create.html", {"form": form})


def home(request, slug: str):
    try:
        community = selectors.community_for(request.user, slug)
    except NotFound:
        # Outsiders see an open community's join page; a closed one does not exist for them.
        open_one = selectors.open_community(slug)
        if open_one is None:
            raise Http404(_("No such community.")) from None
        return render(request, "communities/join_open.html", {"community": open_one})
    return render(request, "communities/home.html", {
        "community": community,
        "role": permissions.role_of(request.user, community),
        "may_invite": permissions.can(request.user, "invite", community),
        "may_audit": permissions.can(request.user, "view_audit", community),
        "member_count": selectors.members(community).count(),
        "zones": sharing_selectors.zones_of(community),
    })


@login_required
@require_POST
def join_open(request, slug: str):
    community = selectors.open_community(slug)
    if community is None:
        raise Http404(_("No such community."))
    try:
        services.join_open_community(actor=request.user, community=community)
    except DomainError as error:
        _refuse(request, error)
    else:
        messages.success(request, _("Welcome to %(name)s.") % {"name": community.name})
    return redirect("communities:home", slug)


@login_required
@require_POST
def leave(request, slug: str):
    community = _community(request, slug)
    try:
        services.leave_community(actor=request.user, community=community)
    except DomainError as error:
        _refuse(request, error)
        return redirect("communities:home", slug)
    messages.success(request, _("You left %(name)s.") % {"name": community.name})
    return redirect("communities:landing")


@login_required
def members(request, slug: str):
    community = _community(request, slug, "view_members")
    return render(request, "communities/members.html", {
        "community": community,
        "members": selectors.members(community),
        "may_change": permissions.can(request.user, "change_role", community),
        "role_form": RoleForm(),
    })


@login_required
@require_POST
def change_role(request, slug: str, membership_id: int):
    community = _community(request, slug)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
        return redirect("communities:members", slug)
    try:
        membership = selectors.membership(community, membership_id)
        changed = services.change_role(actor=request.user, membership=membership, role=form.cleaned_data["role"])
    except DomainError as error:
        _refuse(request, error)
    else:
        messages.success(request, _("%(name)s is now %(role)s.") % {
            "name": membership.user.name, "role": changed.get_role_display()})
    return redirect("communities:members", slug)


@login_required
def invitations(request, slug: str):
    community = _community(request, slug, "invite")
    form = InvitationForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.create_invitation(actor=request.user, community=community, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The invitation link was created."))
            form = InvitationForm()
    return render(request, "communities/invitations.html", {
        "community": community, "form": form, "created": created,
        "invitations": selectors.invitations(community)[:100],
    })


@login_required
@require_POST
def revoke_invitation(request, slug: str, invitation_id: int):
    community = _community(request, slug, "invite")
    try:
        services.revoke_invitation(actor=request.user, invitation=selectors.invitation(community, invitation_id))
    except DomainError as error:
        _refuse(request, error)
    else:
        messages.success(request, _("The invitation was revoked."))
    return redirect("communities:invitations", slug)


def join(request, token: str):
    invitation = selectors.invitation_by_token(token)
    if invitation is None:
        raise Http404(_("No such invitation."))
    problem = services.invitation_problem(invitation)
    if request.method == "POST" and request.user.is_authenticated and problem is None:
        try:
            services.join_by_invitation(actor=request.user, token=token)
        except DomainError as error:
            _refuse(request, error)
        else:
            messages.success(request, _("Welcome to %(name)s.") % {"name": invitation.community.name})
            return redirect("communities:home", invitation.community.slug)
    already = request.user.is_authenticated and permissions.role_of(request.user, invitation.community) is not None
    return render(request, "communities/join.html", {"invitation": invitation, "problem": problem, "already": already})


@login_required
def audit_log(request, slug: str):
    community = _community(request, slug, "view_audit")
    page = Paginator(platform_selectors.audit_entries(community), 50).get_page(request.GET.get("page"))
    return render(request, "communities/audit.html", {"community": community, "page": page})
