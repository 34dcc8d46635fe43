"""Audit log, the domain-event log and personal access tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """One state change: who did what to which object, in which community, and what changed."""

    community = models.ForeignKey(
        "communities.Community", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["community", "-id"])]
        verbose_name = _("audit entry")

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id}"


class Event(models.Model):
    """A domain event, written in the same transaction as the change it reports.

    The row is the outbox: live streams, jobs and (later) webhooks read it after commit,
    and a reconnecting stream resumes from its id, so nothing depends on one process's memory.
    """

    name = models.CharField(max_length=80)
    community = models.ForeignKey(
        "communities.Community", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # When set, only this person sees the event on their stream (a personal notification).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["community", "id"]), models.Index(fields=["recipient", "id"])]

    def __str__(self) -> str:
        return f"{self.name}#{self.pk}"


class ApiToken(models.Model):
    """A personal access token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="shown to identify the token; not secret")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="apitoken_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
