"""Carries a service's refusal back onto the form the person filled in."""

from __future__ import annotations

from django import forms

from pumasi.core.errors import DomainError


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Field errors go beside their field (or to the top when the form has no such field)."""
    if not error.field_errors:
        form.add_error(None, error.message)
        return
    for field, messages in error.field_errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
