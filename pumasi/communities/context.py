"""Template context: the communities the person belongs to, for the switcher in the header."""

from __future__ import annotations


def community_switcher(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def mine():
        from pumasi.communities.selectors import communities_of

        return list(communities_of(user))

    return {"my_communities": mine}
