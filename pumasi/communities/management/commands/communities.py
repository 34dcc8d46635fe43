"""`pumasi communities …`: the same services and permission checks as the pages and the API,
acting as a named person (`--as EMAIL`)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from pumasi.communities import selectors, services
from pumasi.core.errors import DomainError
from pumasi.platform import selectors as platform_selectors


class Command(BaseCommand):
    help = "Manage communities from the shell, as a given person (their role decides what is allowed)."

    def add_arguments(self, parser):
        parser.add_argument("--as", dest="actor", required=True, help="e-mail of the person acting")
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="communities of the person")
        create = sub.add_parser("create", help="create a community")
        create.add_argument("slug")
        create.add_argument("name")
        create.add_argument("--kind", default="residents")
        members = sub.add_parser("members", help="list members")
        members.add_argument("slug")
        invite = sub.add_parser("invite", help="create an invitation link")
        invite.add_argument("slug")
        invite.add_argument("--role", default="member")
        invite.add_argument("--days", type=int, default=7)
        role = sub.add_parser("set-role", help="change a member's role")
        role.add_argument("slug")
        role.add_argument("email")
        role.add_argument("role")
        audit = sub.add_parser("audit", help="show the audit log")
        audit.add_argument("slug")
        audit.add_argument("--limit", type=int, default=20)

    def handle(self, *args, **options):
        actor = get_user_model().objects.filter(email__iexact=options["actor"]).first()
        if actor is None:
            raise CommandError(f"No person with e-mail {options['actor']}.")
        try:
            getattr(self, "do_" + options["action"].replace("-", "_"))(actor, options)
        except DomainError as error:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.field_errors.items())
            raise CommandError(f"{error.message} {details}".strip()) from error

    def do_list(self, actor, options):
        for membership in selectors.memberships_of(actor):
            self.stdout.write(f"{membership.community.slug:24} {membership.role:10} {membership.community.name}")

    def do_create(self, actor, options):
        community = services.create_community(actor=actor, name=options["name"], slug=options["slug"], kind=options["kind"])
        self.stdout.write(f"created {community.slug}")

    def do_members(self, actor, options):
        community = selectors.community_for(actor, options["slug"], "view_members")
        for membership in selectors.members(community):
            self.stdout.write(f"{membership.user.email:32} {membership.role}")

    def do_invite(self, actor, options):
        community = selectors.community_for(actor, options["slug"])
        invitation = services.create_invitation(
            actor=actor, community=community, role=options["role"], days_valid=options["days"]
        )
        self.stdout.write(f"/join/{invitation.token}/ (role {invitation.role}, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC)")

    def do_set_role(self, actor, options):
        community = selectors.community_for(actor, options["slug"])
        target = selectors.members(community).filter(user__email__iexact=options["email"]).first()
        if target is None:
            raise CommandError(f"{options['email']} is not a member of {community.slug}.")
        services.change_role(actor=actor, membership=target, role=options["role"])
        self.stdout.write(f"{options['email']} is now {options['role']}")

    def do_audit(self, actor, options):
        community = selectors.community_for(actor, options["slug"], "view_audit")
        for entry in platform_selectors.audit_entries(community)[: options["limit"]]:
            who = entry.actor.email if entry.actor else "-"
            self.stdout.write(f"{entry.created_at:%Y-%m-%d %H:%M:%S} {who:28} {entry.action:28} {entry.changes}")
