"""Who may do what in co-creation: built on the community roles, plus a workspace's own
collaborators (members or outside experts, who need not belong to the community)."""

from __future__ import annotations

from pumasi.cocreation.models import CollaboratorRole, Workspace, WorkspaceCollaborator
from pumasi.communities.models import Role
from pumasi.communities.permissions import RANK, role_of
from pumasi.core.errors import NotFound, PermissionDenied


def is_manager(user, community) -> bool:
    """Committee members and organisers run boards, surveys and workspaces."""
    role = role_of(user, community)
    return role is not None and RANK[role] >= RANK[Role.COMMITTEE]


def require_view(user, community) -> None:
    if role_of(user, community) is None:
        raise NotFound("No such community.")


def require_participate(user, community) -> None:
    require_view(user, community)
    role = role_of(user, community)
    if RANK[role] < RANK[Role.MEMBER]:
        raise PermissionDenied("Observers may read but not take part.")


def require_manage(user, community) -> None:
    require_view(user, community)
    if not is_manager(user, community):
        raise PermissionDenied("Only the community's organisers and committee may do this.")


# --- workspaces ---------------------------------------------------------------------------

MANAGER = "manager"


def workspace_role(user, workspace: Workspace) -> str | None:
    """manager, collaborator, expert, member (may read the open call and apply), or None.
    Not cached: a decision on an application changes it within the same request."""
    if user is None or not user.is_authenticated:
        return None
    if is_manager(user, workspace.community):
        return MANAGER
    found = WorkspaceCollaborator.objects.filter(workspace=workspace, user=user).values_list("role", flat=True).first()
    if found:
        return found
    return "member" if role_of(user, workspace.community) is not None else None


def forget_workspace_roles(user) -> None:
    """Kept for callers; workspace roles are read fresh each time."""


INSIDE = {MANAGER, CollaboratorRole.COLLABORATOR, CollaboratorRole.EXPERT}
# What the limited outside-expert role may not do.
EXPERT_FORBIDDEN = {"create_document", "manage_milestones", "start_thread", "view_applications", "manage"}


def can_workspace(user, action: str, workspace: Workspace) -> bool:
    role = workspace_role(user, workspace)
    if action == "view_call":
        return role is not None
    if action == "apply":
        return role == "member" and workspace.status == Workspace.Status.OPEN_CALL
    if role not in INSIDE:
        return False
    if action in {"manage", "view_applications"}:
        return role == MANAGER
    if role == CollaboratorRole.EXPERT:
        return action not in EXPERT_FORBIDDEN
    return True


def require_workspace(user, action: str, workspace: Workspace) -> None:
    if can_workspace(user, action, workspace):
        return
    if workspace_role(user, workspace) is None:
        raise NotFound("No such workspace.")
    raise PermissionDenied("Your role in this workspace does not allow this.")
