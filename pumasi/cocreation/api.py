"""API of the cocreation capability: parse, authorize, call a service, serialize."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime

from django.http import HttpResponse, JsonResponse
from ninja import File, Query, Router, Schema
from ninja.files import UploadedFile
from pydantic import Field

from pumasi.cocreation import search, selectors, services
from pumasi.cocreation.models import SearchDocument
from pumasi.communities.selectors import community_for
from pumasi.core.api import PROBLEM, require_scope
from pumasi.core.errors import InvalidInput
from pumasi.core.pagination import MAX_LIMIT, paginate

router = Router(tags=["cocreation"])
SCOPE = "cocreation:write"
C = "/communities/{slug}"


def _offset_page(queryset, cursor: str | None, limit: int) -> dict:
    """Offset pages for sorts other than newest-first (support counts change under the reader)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", field_errors={"limit": ["out of range"]})
    offset = 0
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().removeprefix("o:"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput("The cursor is not one this API gave out.", field_errors={"cursor": ["unknown cursor"]}) from None
    rows = list(queryset[offset: offset + limit + 1])
    more = len(rows) > limit
    nxt = base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode().rstrip("=") if more else None
    return {"items": rows[:limit], "next_cursor": nxt}


# --- schemas -----------------------------------------------------------------------------------


class BoardIn(Schema):
    title: str = Field(max_length=1000)
    question: str = Field(max_length=10000)
    theme: str = Field("", max_length=1000)
    categories: list[str] = Field(default_factory=list, max_length=100)
    closes_at: datetime | None = None


class BoardOut(Schema):
    id: int
    title: str
    question: str
    theme: str
    categories: list[str]
    closes_at: datetime | None
    created_at: datetime


class BoardPage(Schema):
    items: list[BoardOut]
    next_cursor: str | None


class IdeaIn(Schema):
    title: str = Field(max_length=10000)
    body: str = Field(max_length=100000)
    category: str = Field("", max_length=1000)


class IdeaOut(Schema):
    id: int
    board_id: int
    title: str
    body: str
    category: str
    status: str
    official_answer: str
    support_count: int
    comment_count: int
    author: str | None
    merged_into_id: int | None
    supported: bool = False
    images: list[str] = []
    created_at: datetime

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.name if obj.author_id else None

    @staticmethod
    def resolve_supported(obj) -> bool:
        return bool(getattr(obj, "supported", False))

    @staticmethod
    def resolve_images(obj) -> list[str]:
        # Only the detail endpoint prefetches images; lists stay at a constant query count.
        cached = getattr(obj, "_prefetched_objects_cache", {}).get("images")
        return [i.image.url for i in cached] if cached is not None else []


class IdeaPage(Schema):
    items: list[IdeaOut]
    next_cursor: str | None


class CommentIn(Schema):
    body: str = Field(max_length=100000)
    parent_id: int | None = None


class CommentOut(Schema):
    id: int
    idea_id: int
    parent_id: int | None
    body: str
    author: str | None
    created_at: datetime

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.name if obj.author_id else None


class CommentPage(Schema):
    items: list[CommentOut]
    next_cursor: str | None


class StatusIn(Schema):
    status: str
    answer: str = Field(max_length=100000)


class MergeIn(Schema):
    target_id: int
    answer: str = Field("", max_length=100000)


class HitOut(Schema):
    kind: str
    object_id: int
    url: str
    title: str
    snippet: str


class SearchOut(Schema):
    query: str
    method: str
    hits: list[HitOut]


class WorkspaceNotificationOut(Schema):
    id: int
    name: str
    community: str | None
    payload: dict
    created_at: datetime

    @staticmethod
    def resolve_community(obj) -> str | None:
        return obj.community.slug if obj.community_id else None


class QuestionIn(Schema):
    kind: str
    prompt: str = Field(max_length=10000)
    required: bool = True
    choices: list[str] = Field(default_factory=list, max_length=100)


class QuestionOut(Schema):
    id: int
    position: int
    kind: str
    prompt: str
    required: bool
    choices: list[str]


class SurveyIn(Schema):
    title: str = Field(max_length=10000)
    description: str = Field("", max_length=100000)
    anonymous: bool = True
    results_visible_to_respondents: bool = False
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    questions: list[QuestionIn] = Field(default_factory=list, max_length=200)


class SurveyPatch(Schema):
    results_visible_to_respondents: bool


class SurveyOut(Schema):
    id: int
    title: str
    description: str
    anonymous: bool
    results_visible_to_respondents: bool
    opens_at: datetime
    closes_at: datetime | None
    state: str
    questions: list[QuestionOut]

    @staticmethod
    def resolve_state(obj) -> str:
        return services.survey_state(obj)

    @staticmethod
    def resolve_questions(obj) -> list:
        return selectors.questions(obj)


class SurveyPage(Schema):
    items: list[SurveyOut]
    next_cursor: str | None


class AnswersIn(Schema):
    answers: dict[str, int | float | str | list[int] | None]


class ResponseOut(Schema):
    id: int
    survey_id: int
    submitted_at: datetime


class InvitationsIn(Schema):
    count: int = Field(ge=1, le=1000)
    label: str = Field("", max_length=1000)


class WorkspaceInvitationOut(Schema):
    token: str
    label: str


class OptionOut(Schema):
    label: str
    count: int
    percent: float


class SummaryOut(Schema):
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    minimum: float | None
    maximum: float | None


class QuestionResultOut(Schema):
    question: QuestionOut
    answered: int
    options: list[OptionOut]
    summary: SummaryOut | None
    texts: list[str]


class ResultsOut(Schema):
    responses: int
    questions: list[QuestionResultOut]


class CrossTabOut(Schema):
    row_question_id: int
    column_question_id: int
    row_labels: list[str]
    column_labels: list[str]
    cells: list[list[int]]
    row_totals: list[int]
    column_totals: list[int]
    total: int


class WorkspaceIn(Schema):
    title: str = Field(max_length=10000)
    description: str = Field("", max_length=100000)
    call_text: str = Field("", max_length=100000)
    status: str = "open_call"


class WorkspacePatch(Schema):
    status: str


class WorkspaceOut(Schema):
    id: int
    title: str
    description: str
    call_text: str
    status: str
    created_at: datetime


class WorkspacePage(Schema):
    items: list[WorkspaceOut]
    next_cursor: str | None


class ApplicationIn(Schema):
    motivation: str = Field(max_length=100000)


class ApplicationOut(Schema):
    id: int
    applicant: str
    motivation: str
    status: str
    created_at: datetime

    @staticmethod
    def resolve_applicant(obj) -> str:
        return obj.applicant.name


class ApplicationPage(Schema):
    items: list[ApplicationOut]
    next_cursor: str | None


class ApplicationDecisionIn(Schema):
    accept: bool


class CollaboratorIn(Schema):
    email: str = Field(max_length=300)
    role: str = "expert"


class CollaboratorOut(Schema):
    id: int
    user_id: int
    name: str
    role: str

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.user.name


class DocumentIn(Schema):
    title: str = Field(max_length=10000)
    body: str = Field("", max_length=1_000_000)


class DocumentSave(DocumentIn):
    base_version: int


class DocumentOut(Schema):
    id: int
    title: str
    body: str
    body_html: str
    version: int
    updated_at: datetime


class DocumentPage(Schema):
    items: list[DocumentOut]
    next_cursor: str | None


class DocumentVersionOut(Schema):
    number: int
    title: str
    body: str
    author: str | None
    created_at: datetime

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.name if obj.author_id else None


class DiffLine(Schema):
    kind: str
    text: str


class MilestoneIn(Schema):
    title: str = Field(max_length=10000)
    description: str = Field("", max_length=100000)
    starts_on: date | None = None
    due_on: date


class MilestonePatch(Schema):
    title: str | None = Field(None, max_length=10000)
    description: str | None = Field(None, max_length=100000)
    starts_on: date | None = None
    due_on: date | None = None
    done: bool | None = None


class MilestoneOut(Schema):
    id: int
    title: str
    description: str
    starts_on: date
    due_on: date
    done: bool


class CalendarOut(Schema):
    url: str


class ThreadIn(Schema):
    title: str = Field(max_length=10000)
    body: str = Field(max_length=100000)


class ThreadOut(Schema):
    id: int
    title: str
    author: str | None
    created_at: datetime

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.name if obj.author_id else None


class ThreadPage(Schema):
    items: list[ThreadOut]
    next_cursor: str | None


class PostIn(Schema):
    body: str = Field(max_length=100000)


class PostOut(Schema):
    id: int
    body: str
    author: str | None
    created_at: datetime

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.name if obj.author_id else None


class PostPage(Schema):
    items: list[PostOut]
    next_cursor: str | None


class WorkspaceActivityOut(Schema):
    id: int
    verb: str
    summary: str
    created_at: datetime


# --- idea boards -------------------------------------------------------------------------------


@router.get(C + "/idea-boards", response=BoardPage, summary="Idea boards of a community")
def list_boards(request, slug: str, cursor: str | None = None, limit: int = 50):
    return paginate(selectors.boards(community_for(request.user, slug)), cursor=cursor, limit=limit)


@router.post(C + "/idea-boards", response={201: BoardOut}, summary="Open an idea board")
def create_board(request, slug: str, payload: BoardIn):
    require_scope(request, SCOPE)
    return 201, services.create_board(actor=request.user, community=community_for(request.user, slug), **payload.dict())


@router.get(C + "/idea-boards/{board_id}/ideas", response=IdeaPage, summary="Ideas of a board, sorted and filtered")
def list_ideas(request, slug: str, board_id: int, sort: str = "new", status: str | None = None,
               category: str | None = None, cursor: str | None = None, limit: int = 20):
    board = selectors.board(community_for(request.user, slug), board_id)
    qs = selectors.ideas(board, user=request.user, sort=sort, status=status, category=category)
    return paginate(qs, cursor=cursor, limit=limit) if sort == "new" else _offset_page(qs, cursor, limit)


@router.post(C + "/idea-boards/{board_id}/ideas", response={201: IdeaOut}, summary="Post an idea")
def create_idea(request, slug: str, board_id: int, payload: IdeaIn):
    require_scope(request, SCOPE)
    board = selectors.board(community_for(request.user, slug), board_id)
    return 201, services.create_idea(actor=request.user, board=board, **payload.dict())


@router.post(C + "/idea-boards/{board_id}/ideas/with-images", response={201: IdeaOut},
             summary="Post an idea with images (multipart form)")
def create_idea_with_images(request, slug: str, board_id: int, title: str = Query(...), body: str = Query(...),
                            category: str = "", images: list[UploadedFile] = File(None)):
    require_scope(request, SCOPE)
    board = selectors.board(community_for(request.user, slug), board_id)
    idea = services.create_idea(actor=request.user, board=board, title=title, body=body, category=category, images=images or [])
    return 201, selectors.idea(board.community, idea.pk, user=request.user)


def _idea(request, slug: str, idea_id: int):
    return selectors.idea(community_for(request.user, slug), idea_id, user=request.user)


@router.get(C + "/ideas/{idea_id}", response=IdeaOut)
def get_idea(request, slug: str, idea_id: int):
    idea = _idea(request, slug, idea_id)
    idea._prefetched_objects_cache = {"images": list(idea.images.all())}
    return idea


@router.post(C + "/ideas/{idea_id}/support", response=IdeaOut, summary="Support an idea (once)")
def support(request, slug: str, idea_id: int):
    require_scope(request, SCOPE)
    services.support_idea(actor=request.user, idea=_idea(request, slug, idea_id))
    return _idea(request, slug, idea_id)


@router.delete(C + "/ideas/{idea_id}/support", response=IdeaOut, summary="Withdraw my support")
def withdraw(request, slug: str, idea_id: int):
    require_scope(request, SCOPE)
    services.withdraw_support(actor=request.user, idea=_idea(request, slug, idea_id))
    return _idea(request, slug, idea_id)


@router.get(C + "/ideas/{idea_id}/comments", response=CommentPage, summary="Comments, oldest first (parent_id threads them)")
def list_comments(request, slug: str, idea_id: int, cursor: str | None = None, limit: int = 100):
    idea = _idea(request, slug, idea_id)
    return paginate(idea.comments.select_related("author"), cursor=cursor, limit=limit, newest_first=False)


@router.post(C + "/ideas/{idea_id}/comments", response={201: CommentOut})
def add_comment(request, slug: str, idea_id: int, payload: CommentIn):
    require_scope(request, SCOPE)
    idea = _idea(request, slug, idea_id)
    parent = selectors.comment(idea, payload.parent_id) if payload.parent_id else None
    return 201, services.comment_on_idea(actor=request.user, idea=idea, body=payload.body, parent=parent)


@router.put(C + "/ideas/{idea_id}/follow", response={204: None})
def follow(request, slug: str, idea_id: int):
    require_scope(request, SCOPE)
    services.follow_idea(actor=request.user, idea=_idea(request, slug, idea_id), follow=True)
    return 204, None


@router.delete(C + "/ideas/{idea_id}/follow", response={204: None})
def unfollow(request, slug: str, idea_id: int):
    require_scope(request, SCOPE)
    services.follow_idea(actor=request.user, idea=_idea(request, slug, idea_id), follow=False)
    return 204, None


@router.post(C + "/ideas/{idea_id}/status", response=IdeaOut, summary="Move an idea in the workflow, with an official answer")
def change_status(request, slug: str, idea_id: int, payload: StatusIn):
    require_scope(request, SCOPE)
    services.change_idea_status(actor=request.user, idea=_idea(request, slug, idea_id), **payload.dict())
    return _idea(request, slug, idea_id)


@router.post(C + "/ideas/{idea_id}/merge", response=IdeaOut, summary="Merge this idea into another (duplicates)")
def merge(request, slug: str, idea_id: int, payload: MergeIn):
    require_scope(request, SCOPE)
    community = community_for(request.user, slug)
    source = selectors.idea(community, idea_id)
    target = selectors.idea(community, payload.target_id)
    services.merge_ideas(actor=request.user, source=source, target=target, answer=payload.answer)
    return _idea(request, slug, payload.target_id)


@router.get(C + "/search", response=SearchOut, summary="Search ideas, comments, surveys and documents (Korean-aware)")
def search_community(request, slug: str, q: str, kind: str | None = None, limit: int = 30):
    community = community_for(request.user, slug)
    if not 1 <= limit <= 100:
        raise InvalidInput("limit must be between 1 and 100.", field_errors={"limit": ["out of range"]})
    if kind and kind not in SearchDocument.Kind.values:
        raise InvalidInput("Unknown kind.", field_errors={"kind": [f"Choose one of: {', '.join(SearchDocument.Kind.values)}."]})
    result = search.search(community=community, query=q, workspace_ids=selectors.visible_workspace_ids(request.user, community),
                           kinds=[kind] if kind else None, limit=limit)
    return {"query": result.query, "method": result.method,
            "hits": [{**h.__dict__, "snippet": str(h.snippet)} for h in result.hits]}


@router.get("/cocreation/notifications", response=list[WorkspaceNotificationOut], summary="My co-creation notifications")
def my_notifications(request, limit: int = 50):
    return selectors.notifications(request.user, limit=max(1, min(limit, 200)))


# --- surveys ------------------------------------------------------------------------------------


@router.get(C + "/surveys", response=SurveyPage)
def list_surveys(request, slug: str, cursor: str | None = None, limit: int = 50):
    return paginate(selectors.surveys(community_for(request.user, slug)), cursor=cursor, limit=limit)


@router.post(C + "/surveys", response={201: SurveyOut}, summary="Create a survey with its questions")
def create_survey(request, slug: str, payload: SurveyIn):
    require_scope(request, SCOPE)
    data = payload.dict()
    return 201, services.create_survey(actor=request.user, community=community_for(request.user, slug), **data)


def _survey(request, slug: str, survey_id: int):
    return selectors.survey(community_for(request.user, slug), survey_id)


@router.get(C + "/surveys/{survey_id}", response=SurveyOut)
def get_survey(request, slug: str, survey_id: int):
    return _survey(request, slug, survey_id)


@router.patch(C + "/surveys/{survey_id}", response=SurveyOut, summary="Show or hide results to respondents")
def patch_survey(request, slug: str, survey_id: int, payload: SurveyPatch):
    require_scope(request, SCOPE)
    return services.set_results_visibility(actor=request.user, survey=_survey(request, slug, survey_id),
                                           visible=payload.results_visible_to_respondents)


@router.post(C + "/surveys/{survey_id}/questions", response={201: QuestionOut})
def add_question(request, slug: str, survey_id: int, payload: QuestionIn):
    require_scope(request, SCOPE)
    return 201, services.add_question(actor=request.user, survey=_survey(request, slug, survey_id), **payload.dict())


@router.post(C + "/surveys/{survey_id}/close", response=SurveyOut)
def close_survey(request, slug: str, survey_id: int):
    require_scope(request, SCOPE)
    return services.close_survey(actor=request.user, survey=_survey(request, slug, survey_id))


@router.post(C + "/surveys/{survey_id}/invitations", response={201: list[WorkspaceInvitationOut]},
             summary="Create one-response tokens for people without an account")
def create_invitations(request, slug: str, survey_id: int, payload: InvitationsIn):
    require_scope(request, SCOPE)
    return 201, services.create_survey_invitations(actor=request.user, survey=_survey(request, slug, survey_id), **payload.dict())


@router.post(C + "/surveys/{survey_id}/responses", response={201: ResponseOut}, summary="Answer a survey (once)")
def respond(request, slug: str, survey_id: int, payload: AnswersIn):
    require_scope(request, SCOPE)
    return 201, services.submit_response(survey=_survey(request, slug, survey_id), answers=payload.answers, actor=request.user)


@router.post("/survey-invitations/{token}/response", response={201: ResponseOut}, auth=None,
             summary="Answer a survey with an invitation token (no account needed)")
def respond_by_token(request, token: str, payload: AnswersIn):
    survey, _invitation = selectors.survey_by_token(token)
    return 201, services.submit_response(survey=survey, answers=payload.answers, token=token)


@router.get(C + "/surveys/{survey_id}/results", response=ResultsOut)
def survey_results(request, slug: str, survey_id: int):
    survey = _survey(request, slug, survey_id)
    selectors.require_results(request.user, survey)
    total, rows = selectors.results(survey)
    return {"responses": total, "questions": [
        {"question": r.question, "answered": r.answered, "options": [o.__dict__ for o in r.options],
         "summary": r.summary.__dict__ if r.summary else None, "texts": r.texts} for r in rows]}


@router.get(C + "/surveys/{survey_id}/crosstab", response=CrossTabOut)
def survey_crosstab(request, slug: str, survey_id: int, row: int, column: int):
    survey = _survey(request, slug, survey_id)
    selectors.require_results(request.user, survey)
    tab = selectors.crosstab(survey, row, column)
    return {"row_question_id": tab.row_question.pk, "column_question_id": tab.column_question.pk,
            **{k: getattr(tab, k) for k in ("row_labels", "column_labels", "cells", "row_totals", "column_totals", "total")}}


@router.get(C + "/surveys/{survey_id}/results.csv", summary="All responses as CSV")
def survey_csv(request, slug: str, survey_id: int):
    survey = _survey(request, slug, survey_id)
    selectors.require_results(request.user, survey)
    response = HttpResponse(selectors.results_csv(survey), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}.csv"'
    return response


# --- workspaces ---------------------------------------------------------------------------------


@router.get(C + "/workspaces", response=WorkspacePage)
def list_workspaces(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = community_for(request.user, slug)
    return paginate(community.workspaces.all(), cursor=cursor, limit=limit)


@router.post(C + "/workspaces", response={201: WorkspaceOut}, summary="Open a workspace with an open call")
def create_workspace(request, slug: str, payload: WorkspaceIn):
    require_scope(request, SCOPE)
    return 201, services.create_workspace(actor=request.user, community=community_for(request.user, slug), **payload.dict())


W = C + "/workspaces/{workspace_id}"


@router.get(W, response=WorkspaceOut)
def get_workspace(request, slug: str, workspace_id: int):
    return selectors.workspace_by_slug(request.user, slug, workspace_id)


@router.patch(W, response=WorkspaceOut)
def patch_workspace(request, slug: str, workspace_id: int, payload: WorkspacePatch):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return services.set_workspace_status(actor=request.user, workspace=workspace, status=payload.status)


@router.post(W + "/applications", response={201: ApplicationOut}, summary="Apply to the open call")
def apply(request, slug: str, workspace_id: int, payload: ApplicationIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return 201, services.apply_to_workspace(actor=request.user, workspace=workspace, motivation=payload.motivation)


@router.get(W + "/applications", response=ApplicationPage)
def list_applications(request, slug: str, workspace_id: int, cursor: str | None = None, limit: int = 50):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view_applications")
    return paginate(selectors.applications(workspace), cursor=cursor, limit=limit)


@router.post(W + "/applications/{application_id}/decision", response=ApplicationOut)
def decide(request, slug: str, workspace_id: int, application_id: int, payload: ApplicationDecisionIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "manage")
    return services.decide_application(actor=request.user, application=selectors.application(workspace, application_id),
                                       accept=payload.accept)


@router.get(W + "/collaborators", response=list[CollaboratorOut])
def list_collaborators(request, slug: str, workspace_id: int):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return list(selectors.collaborators(workspace))


@router.post(W + "/collaborators", response={201: CollaboratorOut}, summary="Add a collaborator or outside expert by e-mail")
def add_collaborator(request, slug: str, workspace_id: int, payload: CollaboratorIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "manage")
    return 201, services.add_collaborator(actor=request.user, workspace=workspace, **payload.dict())


@router.get(W + "/documents", response=DocumentPage)
def list_documents(request, slug: str, workspace_id: int, cursor: str | None = None, limit: int = 50):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return paginate(selectors.documents(workspace), cursor=cursor, limit=limit, newest_first=False)


@router.post(W + "/documents", response={201: DocumentOut})
def create_document(request, slug: str, workspace_id: int, payload: DocumentIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return 201, services.create_document(actor=request.user, workspace=workspace, **payload.dict())


@router.get(W + "/documents/{document_id}", response=DocumentOut)
def get_document(request, slug: str, workspace_id: int, document_id: int):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return selectors.document(workspace, document_id)


def conflict_response(error: services.DocumentConflict) -> JsonResponse:
    """409 with both texts: the one saved meanwhile and the one this client tried to save."""
    current = error.current
    body = {
        "type": "about:blank", "title": error.message, "status": 409, "code": error.code,
        "base_version": error.base_version,
        "current": {"version": current.version, "title": current.title, "body": current.body},
        "yours": {"title": error.yours_title, "body": error.yours_body},
    }
    return JsonResponse(body, status=409, content_type=PROBLEM, json_dumps_params={"ensure_ascii": False})


@router.put(W + "/documents/{document_id}", response={200: DocumentOut, 409: dict},
            summary="Save a new version; 409 with both texts if someone saved since base_version")
def save_document(request, slug: str, workspace_id: int, document_id: int, payload: DocumentSave):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    try:
        return services.save_document(actor=request.user, document=selectors.document(workspace, document_id), **payload.dict())
    except services.DocumentConflict as error:
        return conflict_response(error)


@router.get(W + "/documents/{document_id}/versions", response=list[DocumentVersionOut])
def list_versions(request, slug: str, workspace_id: int, document_id: int):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return list(selectors.versions(selectors.document(workspace, document_id)))


@router.get(W + "/documents/{document_id}/diff", response=list[DiffLine], summary="Unified diff between two versions")
def diff(request, slug: str, workspace_id: int, document_id: int, old: int = Query(..., alias="from"),
         new: int = Query(..., alias="to")):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return [{"kind": k, "text": t} for k, t in selectors.diff(selectors.document(workspace, document_id), old, new)]


@router.get(W + "/milestones", response=list[MilestoneOut])
def list_milestones(request, slug: str, workspace_id: int):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return list(selectors.milestones(workspace))


@router.post(W + "/milestones", response={201: MilestoneOut})
def add_milestone(request, slug: str, workspace_id: int, payload: MilestoneIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return 201, services.add_milestone(actor=request.user, workspace=workspace, **payload.dict())


@router.patch(W + "/milestones/{milestone_id}", response=MilestoneOut)
def patch_milestone(request, slug: str, workspace_id: int, milestone_id: int, payload: MilestonePatch):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return services.update_milestone(actor=request.user, milestone=selectors.milestone(workspace, milestone_id),
                                     **payload.dict(exclude_none=True))


def _calendar_url(request, workspace) -> str:
    from django.urls import reverse

    return request.build_absolute_uri(reverse("cocreation:calendar", args=[workspace.pk, workspace.calendar_token]))


@router.get(W + "/calendar", response=CalendarOut, summary="The private iCalendar URL of the workspace")
def calendar_url(request, slug: str, workspace_id: int):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return {"url": _calendar_url(request, workspace)}


@router.post(W + "/calendar/revoke", response=CalendarOut, summary="Revoke the calendar URL and issue a new one")
def revoke_calendar(request, slug: str, workspace_id: int):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return {"url": _calendar_url(request, services.revoke_calendar_token(actor=request.user, workspace=workspace))}


@router.get(W + "/threads", response=ThreadPage)
def list_threads(request, slug: str, workspace_id: int, cursor: str | None = None, limit: int = 50):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return paginate(selectors.threads(workspace), cursor=cursor, limit=limit)


@router.post(W + "/threads", response={201: ThreadOut})
def start_thread(request, slug: str, workspace_id: int, payload: ThreadIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return 201, services.start_thread(actor=request.user, workspace=workspace, **payload.dict())


@router.get(W + "/threads/{thread_id}/posts", response=PostPage)
def list_posts(request, slug: str, workspace_id: int, thread_id: int, cursor: str | None = None, limit: int = 100):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return paginate(selectors.posts(selectors.thread(workspace, thread_id)), cursor=cursor, limit=limit, newest_first=False)


@router.post(W + "/threads/{thread_id}/posts", response={201: PostOut})
def post(request, slug: str, workspace_id: int, thread_id: int, payload: PostIn):
    require_scope(request, SCOPE)
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id)
    return 201, services.post_in_thread(actor=request.user, thread=selectors.thread(workspace, thread_id), body=payload.body)


@router.get(W + "/activity", response=list[WorkspaceActivityOut])
def workspace_activity(request, slug: str, workspace_id: int, limit: int = 50):
    workspace = selectors.workspace_by_slug(request.user, slug, workspace_id, "view")
    return list(selectors.activity(workspace, limit=max(1, min(limit, 200))))


# Community product design and production (issue 6) live in their own module.
from pumasi.cocreation import api_design  # noqa: E402

router.add_router("", api_design.router)
