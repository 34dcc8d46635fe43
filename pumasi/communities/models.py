"""A community, its members with their roles, and invitation links."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Community(models.Model):
    class Kind(models.TextChoices):
        RESIDENTS = "residents", _("Residents' association")
        COOPERATIVE = "cooperative", _("Cooperative")
        COMPANY = "company", _("Company community")
        PUBLIC = "public", _("Public body / living lab")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("address"), max_length=60, unique=True, allow_unicode=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    description = models.TextField(_("description"), blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Seoul")
    currency = models.CharField(_("currency"), max_length=3, default="KRW")
    open_join = models.BooleanField(_("anyone may join"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = _("communities")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["residents", "cooperative", "company", "public"]), name="community_kind_valid"
            ),
            models.CheckConstraint(condition=~models.Q(name=""), name="community_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OBSERVER = "observer", _("Observer")
    MEMBER = "member", _("Member")
    COMMITTEE = "committee", _("Committee")
    ORGANISER = "organiser", _("Organiser")


class Membership(models.Model):
    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=12, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "user"], name="membership_once_per_community"),
            models.CheckConstraint(
                condition=models.Q(role__in=["observer", "member", "committee", "organiser"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.community} ({self.role})"


class Invitation(models.Model):
    community = models.ForeignKey(Community, on_delete=models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.MEMBER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True) | models.Q(uses__lte=models.F("max_uses")),
                name="invitation_uses_within_max",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["observer", "member", "committee", "organiser"]), name="invitation_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation to {self.community} ({self.role})"
