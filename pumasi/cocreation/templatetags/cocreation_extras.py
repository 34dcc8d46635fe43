"""Template helpers for co-creation pages."""

from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    """mapping[key] or None — for per-question errors and values keyed by id."""
    if not mapping:
        return None
    return mapping.get(key)
