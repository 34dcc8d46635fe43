"""Reads of co-creation: idea lists (constant query count), survey results with statistics,
workspaces with their documents, diffs and activity, and personal notifications."""

from __future__ import annotations

import csv
import difflib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.fields import BooleanField
from django.db.models.functions import Coalesce
from django.utils import timezone

from pumasi.cocreation import permissions, stats
from pumasi.cocreation.models import (
    DocumentVersion,
    Idea,
    IdeaBoard,
    IdeaComment,
    IdeaFollow,
    IdeaStatus,
    IdeaSupport,
    Milestone,
    QuestionKind,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyParticipation,
    SurveyQuestion,
    SurveyResponse,
    Workspace,
    WorkspaceActivity,
    WorkspaceApplication,
    WorkspaceCollaborator,
    WorkspaceDocument,
    WorkspaceThread,
)
from pumasi.core.errors import InvalidInput, NotFound, PermissionDenied
from pumasi.platform.models import Event

SORTS = ("new", "supported", "trending")
TRENDING_DAYS = 7


# --- idea boards ------------------------------------------------------------------------------


def boards(community) -> QuerySet[IdeaBoard]:
    return IdeaBoard.objects.filter(community=community).annotate(idea_count=Count("ideas")).order_by("-id")


def board(community, board_id: int) -> IdeaBoard:
    found = IdeaBoard.objects.filter(community=community, pk=board_id).select_related("community").first()
    if found is None:
        raise NotFound("No such idea board.")
    return found


def ideas(board: IdeaBoard, *, user=None, sort: str = "new", status: str | None = None,
          category: str | None = None) -> QuerySet[Idea]:
    """The board's ideas with author and "do I support it" in the same query; counts are
    stored on the idea, so the page costs the same few queries at any page size."""
    errors = {}
    if sort not in SORTS:
        errors["sort"] = [f"Choose one of: {', '.join(SORTS)}."]
    if status and status not in IdeaStatus.values:
        errors["status"] = [f"Choose one of: {', '.join(IdeaStatus.values)}."]
    if errors:
        raise InvalidInput("The list cannot be shown that way.", field_errors=errors)
    qs = Idea.objects.filter(board=board).select_related("author", "community")
    qs = qs.filter(status=status) if status else qs.exclude(status=IdeaStatus.MERGED)
    if category:
        qs = qs.filter(category=category)
    if user is not None and user.is_authenticated:
        qs = qs.annotate(supported=Exists(IdeaSupport.objects.filter(idea=OuterRef("pk"), user=user)))
    else:
        qs = qs.annotate(supported=Value(False, output_field=BooleanField()))
    if sort == "supported":
        return qs.order_by("-support_count", "-id")
    if sort == "trending":
        since = timezone.now() - timedelta(days=TRENDING_DAYS)
        # A correlated count per idea over the (idea, created_at) index. A join with GROUP BY
        # over every support of the board (and the wide selected columns) cost ~1 s per page
        # at 10,000 ideas / 100,000 supports; this is ~20 ms (bench.cocreation).
        recent = (IdeaSupport.objects.filter(idea=OuterRef("pk"), created_at__gte=since).order_by()
                  .values("idea").annotate(n=Count("*")).values("n"))
        return qs.annotate(recent=Coalesce(Subquery(recent, output_field=IntegerField()), 0)).order_by(
            "-recent", "-support_count", "-id")
    return qs.order_by("-id")


def idea(community, idea_id: int, *, user=None) -> Idea:
    qs = Idea.objects.filter(community=community, pk=idea_id).select_related("board", "author", "community", "merged_into")
    if user is not None and user.is_authenticated:
        qs = qs.annotate(
            supported=Exists(IdeaSupport.objects.filter(idea=OuterRef("pk"), user=user)),
            following=Exists(IdeaFollow.objects.filter(idea=OuterRef("pk"), user=user)),
        )
    found = qs.first()
    if found is None:
        raise NotFound("No such idea.")
    return found


def comment(idea: Idea, comment_id: int) -> IdeaComment:
    found = IdeaComment.objects.filter(idea=idea, pk=comment_id).first()
    if found is None:
        raise NotFound("No such comment.")
    return found


@dataclass
class CommentNode:
    comment: IdeaComment
    replies: list = field(default_factory=list)


def comment_tree(idea: Idea) -> list[CommentNode]:
    """Threads in one query: top-level comments in order, each with its nested replies."""
    nodes = {c.pk: CommentNode(c) for c in IdeaComment.objects.filter(idea=idea).select_related("author").order_by("pk")}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.comment.parent_id)
        (parent.replies if parent else roots).append(node)
    return roots


def flatten(nodes: list[CommentNode], depth: int = 0) -> list[tuple[IdeaComment, int]]:
    out = []
    for node in nodes:
        out.append((node.comment, min(depth, 4)))
        out.extend(flatten(node.replies, depth + 1))
    return out


def status_history(idea: Idea):
    return idea.status_changes.select_related("actor").order_by("pk")


def notifications(user, *, limit: int = 50) -> list[Event]:
    return list(Event.objects.filter(recipient=user, name__startswith="cocreation.").select_related("community").order_by("-pk")[:limit])


# --- surveys ----------------------------------------------------------------------------------


def surveys(community) -> QuerySet[Survey]:
    return Survey.objects.filter(community=community).annotate(response_count=Count("responses")).order_by("-id")


def survey(community, survey_id: int) -> Survey:
    found = Survey.objects.filter(community=community, pk=survey_id).select_related("community").first()
    if found is None:
        raise NotFound("No such survey.")
    return found


def survey_by_token(token: str) -> tuple[Survey, SurveyInvitation]:
    invitation = SurveyInvitation.objects.filter(token=token).select_related("survey__community").first()
    if invitation is None:
        raise NotFound("No such survey invitation.")
    return invitation.survey, invitation


def questions(survey: Survey) -> list[SurveyQuestion]:
    return list(SurveyQuestion.objects.filter(survey=survey).order_by("position"))


def has_answered(user, survey: Survey) -> bool:
    return bool(user and user.is_authenticated and SurveyParticipation.objects.filter(survey=survey, user=user).exists())


def may_see_results(user, survey: Survey, *, answered_by_token: bool = False) -> bool:
    """Organisers always; respondents only if the organiser opened the results to them."""
    if permissions.is_manager(user, survey.community):
        return True
    if not survey.results_visible_to_respondents:
        return False
    return answered_by_token or has_answered(user, survey)


def require_results(user, survey: Survey, *, answered_by_token: bool = False) -> None:
    if not may_see_results(user, survey, answered_by_token=answered_by_token):
        raise PermissionDenied("The results of this survey are not shown to you.")


@dataclass
class OptionCount:
    label: str
    count: int
    percent: float


@dataclass
class QuestionResult:
    question: SurveyQuestion
    answered: int
    options: list[OptionCount] = field(default_factory=list)
    summary: stats.Summary | None = None
    texts: list[str] = field(default_factory=list)


def option_labels(question: SurveyQuestion) -> list[str]:
    if question.kind == QuestionKind.LIKERT:
        return ["1", "2", "3", "4", "5"]
    return list(question.choices)


def results(survey: Survey) -> tuple[int, list[QuestionResult]]:
    """Counts and percentages (of those who answered the question), and for Likert and number
    questions the mean with a 95 % confidence interval. Five queries whatever the size."""
    total = SurveyResponse.objects.filter(survey=survey).count()
    qs = questions(survey)
    answered = dict(SurveyAnswer.objects.filter(question__survey=survey).values("question").annotate(
        n=Count("response", distinct=True)).values_list("question", "n"))
    choice_counts: dict[tuple[int, int], int] = {
        (q, c): n for q, c, n in SurveyAnswer.objects.filter(question__survey=survey, choice__isnull=False)
        .values("question", "choice").annotate(n=Count("id")).values_list("question", "choice", "n")
    }
    numbers: dict[int, list[float]] = defaultdict(list)
    for q, n in SurveyAnswer.objects.filter(question__survey=survey, number__isnull=False).values_list("question", "number"):
        numbers[q].append(n)
    texts: dict[int, list[str]] = defaultdict(list)
    for q, t in SurveyAnswer.objects.filter(question__survey=survey, question__kind=QuestionKind.TEXT).exclude(text="") \
            .order_by("pk").values_list("question", "text"):
        texts[q].append(t)
    out = []
    for q in qs:
        n = answered.get(q.pk, 0)
        result = QuestionResult(question=q, answered=n)
        if q.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            counts = [choice_counts.get((q.pk, i), 0) for i in range(len(q.choices))]
        elif q.kind == QuestionKind.LIKERT:
            counts = [sum(1 for v in numbers[q.pk] if v == level) for level in range(1, 6)]
        else:
            counts = []
        result.options = [OptionCount(label, c, round(100.0 * c / n, 1) if n else 0.0)
                          for label, c in zip(option_labels(q), counts, strict=False)]
        if q.kind in (QuestionKind.LIKERT, QuestionKind.NUMBER):
            result.summary = stats.summarize(numbers[q.pk])
        if q.kind == QuestionKind.TEXT:
            result.texts = texts[q.pk]
        out.append(result)
    return total, out


CROSSTAB_KINDS = {QuestionKind.SINGLE, QuestionKind.MULTIPLE, QuestionKind.LIKERT}


@dataclass
class CrossTab:
    row_question: SurveyQuestion
    column_question: SurveyQuestion
    row_labels: list[str]
    column_labels: list[str]
    cells: list[list[int]]
    row_totals: list[int]
    column_totals: list[int]
    total: int


def crosstab(survey: Survey, row_id: int, column_id: int) -> CrossTab:
    """Respondents who answered both questions, counted by their pair of answers (a
    multiple-choice respondent counts once in each option they chose)."""
    by_id = {q.pk: q for q in questions(survey)}
    errors = {}
    for name, qid in (("row", row_id), ("column", column_id)):
        q = by_id.get(qid)
        if q is None or q.kind not in CROSSTAB_KINDS:
            errors[name] = ["Choose a single-choice, multiple-choice or Likert question of this survey."]
    if not errors and row_id == column_id:
        errors["column"] = ["Choose two different questions."]
    if errors:
        raise InvalidInput("The cross-tab cannot be made.", field_errors=errors)
    rq, cq = by_id[row_id], by_id[column_id]
    picks: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for response_id, question_id, choice, number in SurveyAnswer.objects.filter(question_id__in=[row_id, column_id]) \
            .values_list("response_id", "question_id", "choice", "number"):
        index = int(number) - 1 if by_id[question_id].kind == QuestionKind.LIKERT else choice
        if index is not None:
            picks[response_id][question_id].add(index)
    rows, cols = option_labels(rq), option_labels(cq)
    cells = [[0] * len(cols) for _ in rows]
    both = 0
    for chosen in picks.values():
        if row_id in chosen and column_id in chosen:
            both += 1
            for r in chosen[row_id]:
                for c in chosen[column_id]:
                    cells[r][c] += 1
    return CrossTab(rq, cq, rows, cols, cells, [sum(r) for r in cells], [sum(col) for col in zip(*cells, strict=True)] if cells else [], both)


def _csv_safe(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def results_csv(survey: Survey) -> str:
    qs = questions(survey)
    header = ["response", "submitted_at"] + ([] if survey.anonymous else ["respondent"]) + [q.prompt for q in qs]
    answers: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    by_id = {q.pk: q for q in qs}
    for response_id, qid, choice, number, text in SurveyAnswer.objects.filter(question__survey=survey).order_by("pk") \
            .values_list("response_id", "question_id", "choice", "number", "text"):
        q = by_id[qid]
        if choice is not None:
            value = q.choices[choice] if choice < len(q.choices) else str(choice)
        elif number is not None:
            value = f"{number:g}"
        else:
            value = text
        answers[response_id][qid].append(value)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_csv_safe(h) for h in header])
    for response in SurveyResponse.objects.filter(survey=survey).select_related("respondent").order_by("pk"):
        row = [response.pk, response.submitted_at.isoformat()]
        if not survey.anonymous:
            row.append(response.respondent.name if response.respondent else "(invitation)")
        row += ["; ".join(answers[response.pk][q.pk]) for q in qs]
        writer.writerow([_csv_safe(v) for v in row])
    return out.getvalue()


# --- workspaces -------------------------------------------------------------------------------


def workspaces(user, community) -> list[Workspace]:
    """Workspaces this person can see in the community: all for members, their own for experts."""
    qs = Workspace.objects.filter(community=community).select_related("community").order_by("-id")
    from pumasi.communities.permissions import role_of

    if role_of(user, community) is None:
        qs = qs.filter(collaborators__user=user)
    return list(qs)


def workspace(user, community, workspace_id: int, action: str = "view_call") -> Workspace:
    found = Workspace.objects.filter(community=community, pk=workspace_id).select_related("community").first()
    if found is None:
        raise NotFound("No such workspace.")
    permissions.require_workspace(user, action, found)
    return found


def workspace_by_slug(user, slug: str, workspace_id: int, action: str = "view_call") -> Workspace:
    found = Workspace.objects.filter(community__slug=slug, pk=workspace_id).select_related("community").first()
    if found is None:
        raise NotFound("No such workspace.")
    permissions.require_workspace(user, action, found)
    return found


def visible_workspace_ids(user, community) -> set[int]:
    if permissions.is_manager(user, community):
        return set(Workspace.objects.filter(community=community).values_list("pk", flat=True))
    if not user.is_authenticated:
        return set()
    return set(WorkspaceCollaborator.objects.filter(workspace__community=community, user=user).values_list("workspace_id", flat=True))


def collaborators(workspace: Workspace):
    return WorkspaceCollaborator.objects.filter(workspace=workspace).select_related("user").order_by("pk")


def applications(workspace: Workspace):
    return WorkspaceApplication.objects.filter(workspace=workspace).select_related("applicant").order_by("-pk")


def application(workspace: Workspace, application_id: int) -> WorkspaceApplication:
    found = WorkspaceApplication.objects.filter(workspace=workspace, pk=application_id).select_related("workspace__community").first()
    if found is None:
        raise NotFound("No such application.")
    return found


def my_application(user, workspace: Workspace) -> WorkspaceApplication | None:
    if not user.is_authenticated:
        return None
    return WorkspaceApplication.objects.filter(workspace=workspace, applicant=user).first()


def documents(workspace: Workspace):
    return WorkspaceDocument.objects.filter(workspace=workspace).select_related("updated_by").order_by("title")


def document(workspace: Workspace, document_id: int) -> WorkspaceDocument:
    found = WorkspaceDocument.objects.filter(workspace=workspace, pk=document_id).select_related("workspace__community", "updated_by").first()
    if found is None:
        raise NotFound("No such document.")
    return found


def versions(document: WorkspaceDocument):
    return DocumentVersion.objects.filter(document=document).select_related("author").order_by("-number")


def version(document: WorkspaceDocument, number: int) -> DocumentVersion:
    found = DocumentVersion.objects.filter(document=document, number=number).first()
    if found is None:
        raise NotFound(f"No version {number} of this document.")
    return found


def diff(document: WorkspaceDocument, old: int, new: int) -> list[tuple[str, str]]:
    """Unified diff lines between two versions, each tagged add / remove / hunk / context."""
    a, b = version(document, old), version(document, new)
    lines = difflib.unified_diff(
        (f"# {a.title}\n" + a.body).splitlines(), (f"# {b.title}\n" + b.body).splitlines(),
        fromfile=f"v{old}", tofile=f"v{new}", lineterm="", n=2,
    )
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else "remove" if line.startswith("-") else "context"
        out.append((kind, line))
    return out


def milestones(workspace: Workspace):
    return Milestone.objects.filter(workspace=workspace).order_by("due_on", "pk")


def milestone(workspace: Workspace, milestone_id: int) -> Milestone:
    found = Milestone.objects.filter(workspace=workspace, pk=milestone_id).select_related("workspace__community").first()
    if found is None:
        raise NotFound("No such milestone.")
    return found


def threads(workspace: Workspace):
    return WorkspaceThread.objects.filter(workspace=workspace).select_related("author").annotate(post_count=Count("posts")).order_by("-pk")


def thread(workspace: Workspace, thread_id: int) -> WorkspaceThread:
    found = WorkspaceThread.objects.filter(workspace=workspace, pk=thread_id).select_related("workspace__community", "author").first()
    if found is None:
        raise NotFound("No such thread.")
    return found


def posts(thread: WorkspaceThread):
    return thread.posts.select_related("author").order_by("pk")


def activity(workspace: Workspace, limit: int = 50):
    return WorkspaceActivity.objects.filter(workspace=workspace).select_related("actor").order_by("-pk")[:limit]


def workspace_by_calendar_token(workspace_id: int, token: str) -> Workspace:
    found = Workspace.objects.filter(pk=workspace_id, calendar_token=token).select_related("community").first()
    if found is None or not token:
        raise NotFound("No such calendar.")
    return found
