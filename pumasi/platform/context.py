"""Template context: the signed-in person's unread notification count, for the header."""

from __future__ import annotations


def unread_notifications(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count():
        from pumasi.platform.notifications import unread_count

        return unread_count(user)

    return {"unread_notifications": count}
