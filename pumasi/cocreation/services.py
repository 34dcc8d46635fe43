"""Write path of co-creation: idea boards, surveys, workspaces. The only place that writes.

Every function validates first (InvalidInput with per-field errors, nothing written), runs in
one transaction, records an audit entry, publishes events, and keeps the search index in step.
"""

from __future__ import annotations

import io
import re
import secrets
from datetime import date, datetime
from typing import Any

import markdown
import nh3
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from pumasi.cocreation import permissions, search
from pumasi.cocreation.models import (
    CollaboratorRole,
    DocumentVersion,
    Idea,
    IdeaBoard,
    IdeaComment,
    IdeaFollow,
    IdeaImage,
    IdeaStatus,
    IdeaStatusChange,
    IdeaSupport,
    Milestone,
    QuestionKind,
    SearchDocument,
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
    WorkspacePost,
    WorkspaceThread,
)
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import publish_event
from pumasi.platform.services import record_audit

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 1600
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_DOCUMENT = 200_000
MAX_CATEGORIES = 20


def clean_text(value: Any) -> str:
    """Plain text as typed, minus control characters; it is escaped wherever it is shown."""
    return CONTROL.sub("", str(value or "")).replace("\r\n", "\n").replace("\r", "\n").strip()


def _check_text(errors: dict, field: str, value: str, *, maximum: int, required: bool = True, minimum: int = 1) -> None:
    if required and len(value) < minimum:
        errors.setdefault(field, []).append("This field is required." if minimum == 1 else f"At least {minimum} characters.")
    elif len(value) > maximum:
        errors.setdefault(field, []).append(f"At most {maximum} characters (this has {len(value)}).")


def _refuse(message: str, errors: dict) -> None:
    if errors:
        raise InvalidInput(message, field_errors=errors)


def render_markdown(text: str) -> str:
    """Markdown to HTML, then nh3 keeps only harmless tags and attributes (no script, no on*)."""
    html = markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    return nh3.clean(html, link_rel="noopener noreferrer nofollow", url_schemes={"http", "https", "mailto"})


# =============================================================================================
# Idea boards
# =============================================================================================


def idea_url(idea: Idea) -> str:
    return reverse("cocreation:idea", args=[idea.community.slug, idea.pk])


def _index_idea(idea: Idea) -> None:
    search.index_object(kind=SearchDocument.Kind.IDEA, object_id=idea.pk, community=idea.community, url=idea_url(idea),
                        title=idea.title, body=idea.body)


def create_board(*, actor, community, title: str, question: str, theme: str = "", categories: list[str] | None = None,
                 closes_at: datetime | None = None) -> IdeaBoard:
    permissions.require_manage(actor, community)
    title, question, theme = clean_text(title), clean_text(question), clean_text(theme)
    cats = []
    for raw in categories or []:
        cat = clean_text(raw)
        if cat and cat not in cats:
            cats.append(cat)
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    _check_text(errors, "question", question, maximum=2000)
    _check_text(errors, "theme", theme, maximum=80, required=False)
    if len(cats) > MAX_CATEGORIES or any(len(c) > 60 for c in cats):
        errors["categories"] = [f"At most {MAX_CATEGORIES} categories of up to 60 characters each."]
    if closes_at is not None and closes_at <= timezone.now():
        errors["closes_at"] = ["The closing date must be in the future."]
    _refuse("The board was not created.", errors)
    with transaction.atomic():
        board = IdeaBoard.objects.create(community=community, title=title, question=question, theme=theme,
                                         categories=cats, closes_at=closes_at, created_by=actor)
        record_audit(actor=actor, action="ideaboard.created", obj=board, community=community,
                     changes={"title": title, "closes_at": closes_at.isoformat() if closes_at else None})
        publish_event(name="cocreation.board_created", community=community, payload={"board_id": board.pk, "title": title})
    return board


def _require_board_open(board: IdeaBoard) -> None:
    if board.closes_at is not None and board.closes_at <= timezone.now():
        raise Conflict("This board closed; it no longer takes ideas or support.", code="board_closed")


def _validated_images(uploads) -> list[tuple[bytes, str, int, int]]:
    """Each upload checked to be a real image, bounded, re-encoded from raw pixels (no EXIF/GPS)."""
    uploads = list(uploads or [])
    if len(uploads) > MAX_IMAGES:
        raise InvalidInput("Too many images.", field_errors={"images": [f"At most {MAX_IMAGES} images."]})
    cleaned = []
    for upload in uploads:
        name = getattr(upload, "name", "image")
        size = getattr(upload, "size", None)
        if size is None or size > MAX_IMAGE_BYTES:
            raise InvalidInput("An image is too large.", field_errors={"images": [f"{name}: at most 5 MB."]})
        data = upload.read()
        if len(data) > MAX_IMAGE_BYTES:
            raise InvalidInput("An image is too large.", field_errors={"images": [f"{name}: at most 5 MB."]})
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise InvalidInput("Unsupported image type.", field_errors={"images": [f"{name}: use JPEG, PNG, WebP or GIF."]})
            if image.width * image.height > 40_000_000:
                raise InvalidInput("An image is too large.", field_errors={"images": [f"{name}: at most 40 megapixels."]})
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidInput("That file is not an image.", field_errors={"images": [f"{name}: not a JPEG, PNG, WebP or GIF image."]}) from exc
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        has_alpha = image.mode in ("RGBA", "LA", "P")
        clean = Image.new("RGBA" if has_alpha else "RGB", image.size)
        clean.paste(image.convert(clean.mode))
        out = io.BytesIO()
        if has_alpha:
            clean.save(out, format="PNG", optimize=True)
            ext = "png"
        else:
            clean.save(out, format="JPEG", quality=85)
            ext = "jpg"
        cleaned.append((out.getvalue(), ext, clean.width, clean.height))
    return cleaned


def create_idea(*, actor, board: IdeaBoard, title: str, body: str, category: str = "", images=None) -> Idea:
    community = board.community
    permissions.require_participate(actor, community)
    _require_board_open(board)
    title, body, category = clean_text(title), clean_text(body), clean_text(category)
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140, minimum=2)
    _check_text(errors, "body", body, maximum=10000, minimum=2)
    if category and category not in board.categories:
        errors["category"] = [f"Choose one of: {', '.join(board.categories)}." if board.categories else "This board has no categories."]
    _refuse("The idea was not posted.", errors)
    pictures = _validated_images(images)
    with transaction.atomic():
        idea = Idea.objects.create(board=board, community=community, author=actor, title=title, body=body, category=category)
        for index, (data, ext, width, height) in enumerate(pictures):
            picture = IdeaImage(idea=idea, width=width, height=height)
            picture.image.save(f"idea-{idea.pk}-{index}-{secrets.token_hex(4)}.{ext}", ContentFile(data), save=False)
            picture.save()
        IdeaFollow.objects.create(idea=idea, user=actor)
        _index_idea(idea)
        record_audit(actor=actor, action="idea.created", obj=idea, community=community,
                     changes={"title": title, "board_id": board.pk, "images": len(pictures)})
        publish_event(name="cocreation.idea_created", community=community,
                      payload={"idea_id": idea.pk, "board_id": board.pk, "title": title})
    return idea


def _lock_idea(idea: Idea) -> Idea:
    return Idea.objects.select_for_update(of=("self",)).select_related("board", "community").get(pk=idea.pk)


def support_idea(*, actor, idea: Idea) -> Idea:
    permissions.require_participate(actor, idea.community)
    _require_board_open(idea.board)
    if idea.status == IdeaStatus.MERGED:
        raise Conflict("This idea was merged into another; support that one instead.", code="idea_merged")
    try:
        with transaction.atomic():
            locked = _lock_idea(idea)
            IdeaSupport.objects.create(idea=locked, user=actor)
            Idea.objects.filter(pk=locked.pk).update(support_count=F("support_count") + 1)
            locked.refresh_from_db(fields=["support_count"])
            record_audit(actor=actor, action="idea.supported", obj=locked, community=locked.community)
            publish_event(name="cocreation.idea_supported", community=locked.community,
                          payload={"idea_id": locked.pk, "support_count": locked.support_count})
    except IntegrityError as exc:
        raise Conflict("You already support this idea.", code="already_supported") from exc
    return locked


def withdraw_support(*, actor, idea: Idea) -> Idea:
    permissions.require_participate(actor, idea.community)
    with transaction.atomic():
        locked = _lock_idea(idea)
        deleted, _ = IdeaSupport.objects.filter(idea=locked, user=actor).delete()
        if not deleted:
            raise Conflict("You do not support this idea.", code="not_supported")
        Idea.objects.filter(pk=locked.pk).update(support_count=F("support_count") - 1)
        locked.refresh_from_db(fields=["support_count"])
        record_audit(actor=actor, action="idea.support_withdrawn", obj=locked, community=locked.community)
        publish_event(name="cocreation.idea_supported", community=locked.community,
                      payload={"idea_id": locked.pk, "support_count": locked.support_count})
    return locked


def _people_to_tell(idea: Idea, *, exclude_id: int | None, supporters: bool) -> list[int]:
    ids = set(IdeaFollow.objects.filter(idea=idea).values_list("user_id", flat=True))
    if idea.author_id:
        ids.add(idea.author_id)
    if supporters:
        ids |= set(IdeaSupport.objects.filter(idea=idea).values_list("user_id", flat=True))
    ids.discard(exclude_id)
    return sorted(ids)


def _notify(user_ids: list[int], *, name: str, community, payload: dict) -> None:
    from django.contrib.auth import get_user_model

    for person in get_user_model().objects.filter(pk__in=user_ids, is_active=True).order_by("pk"):
        publish_event(name=name, community=community, payload=payload, recipient=person)


def comment_on_idea(*, actor, idea: Idea, body: str, parent: IdeaComment | None = None) -> IdeaComment:
    permissions.require_participate(actor, idea.community)
    body = clean_text(body)
    errors: dict = {}
    _check_text(errors, "body", body, maximum=5000)
    if parent is not None and parent.idea_id != idea.pk:
        errors["parent"] = ["The comment you reply to belongs to another idea."]
    _refuse("The comment was not posted.", errors)
    with transaction.atomic():
        locked = _lock_idea(idea)
        comment = IdeaComment.objects.create(idea=locked, author=actor, parent=parent, body=body)
        Idea.objects.filter(pk=locked.pk).update(comment_count=F("comment_count") + 1)
        search.index_object(kind=SearchDocument.Kind.COMMENT, object_id=comment.pk, community=locked.community,
                            url=f"{idea_url(locked)}#comment-{comment.pk}", title=locked.title, body=body)
        record_audit(actor=actor, action="idea.commented", obj=comment, community=locked.community,
                     changes={"idea_id": locked.pk, "parent_id": parent.pk if parent else None})
        tell = set(_people_to_tell(locked, exclude_id=actor.pk, supporters=False))
        if parent is not None and parent.author_id and parent.author_id != actor.pk:
            tell.add(parent.author_id)
        _notify(sorted(tell), name="cocreation.idea_commented", community=locked.community,
                payload={"idea_id": locked.pk, "comment_id": comment.pk, "title": locked.title,
                         "by": actor.name, "url": f"{idea_url(locked)}#comment-{comment.pk}"})
        publish_event(name="cocreation.idea_comment_added", community=locked.community,
                      payload={"idea_id": locked.pk, "comment_id": comment.pk})
    return comment


def follow_idea(*, actor, idea: Idea, follow: bool = True) -> bool:
    permissions.require_participate(actor, idea.community)
    with transaction.atomic():
        if follow:
            _follow, created = IdeaFollow.objects.get_or_create(idea=idea, user=actor)
            changed = created
        else:
            changed = IdeaFollow.objects.filter(idea=idea, user=actor).delete()[0] > 0
        if changed:
            record_audit(actor=actor, action="idea.followed" if follow else "idea.unfollowed", obj=idea, community=idea.community)
    return follow


# Which moves the public workflow allows; merged is reached only through merge_ideas.
TRANSITIONS = {
    IdeaStatus.NEW: {IdeaStatus.UNDER_REVIEW, IdeaStatus.ACCEPTED, IdeaStatus.DECLINED},
    IdeaStatus.UNDER_REVIEW: {IdeaStatus.ACCEPTED, IdeaStatus.DECLINED},
    IdeaStatus.ACCEPTED: {IdeaStatus.IMPLEMENTED, IdeaStatus.DECLINED},
    IdeaStatus.DECLINED: {IdeaStatus.UNDER_REVIEW},
    IdeaStatus.IMPLEMENTED: set(),
    IdeaStatus.MERGED: set(),
}


def change_idea_status(*, actor, idea: Idea, status: str, answer: str) -> Idea:
    permissions.require_manage(actor, idea.community)
    answer = clean_text(answer)
    errors: dict = {}
    if status not in IdeaStatus.values or status == IdeaStatus.MERGED:
        errors["status"] = ["Choose under review, accepted, implemented or declined."]
    _check_text(errors, "answer", answer, maximum=5000)
    _refuse("The status was not changed.", errors)
    with transaction.atomic():
        locked = _lock_idea(idea)
        if status not in TRANSITIONS[locked.status]:
            raise Conflict(f"An idea that is {locked.get_status_display()} cannot move to {IdeaStatus(status).label}.",
                           code="invalid_transition")
        old = locked.status
        locked.status = status
        locked.official_answer = answer
        locked.save(update_fields=["status", "official_answer", "updated_at"])
        IdeaStatusChange.objects.create(idea=locked, from_status=old, to_status=status, answer=answer, actor=actor)
        record_audit(actor=actor, action="idea.status_changed", obj=locked, community=locked.community,
                     changes={"status": [old, status], "answer": answer})
        payload = {"idea_id": locked.pk, "title": locked.title, "status": status, "answer": answer[:300],
                   "url": idea_url(locked)}
        _notify(_people_to_tell(locked, exclude_id=actor.pk, supporters=True), name="cocreation.idea_status_changed",
                community=locked.community, payload=payload)
        publish_event(name="cocreation.idea_updated", community=locked.community,
                      payload={"idea_id": locked.pk, "status": status})
    return locked


def merge_ideas(*, actor, source: Idea, target: Idea, answer: str = "") -> Idea:
    """Merge a duplicate into another idea of the same board: its supports move over once per
    person, its comments and followers move over, and it stays as a pointer to the target."""
    permissions.require_manage(actor, source.community)
    answer = clean_text(answer)
    errors: dict = {}
    if source.pk == target.pk:
        errors["target"] = ["An idea cannot be merged into itself."]
    elif source.board_id != target.board_id:
        errors["target"] = ["Both ideas must be on the same board."]
    _check_text(errors, "answer", answer, maximum=5000, required=False)
    _refuse("The ideas were not merged.", errors)
    with transaction.atomic():
        # Lock both in id order so two merges the other way round cannot deadlock.
        locked = {i.pk: i for i in Idea.objects.select_for_update(of=("self",)).select_related("community")
                  .filter(pk__in=[source.pk, target.pk]).order_by("pk")}
        src, dst = locked[source.pk], locked[target.pk]
        if src.status == IdeaStatus.MERGED:
            raise Conflict("That idea was already merged.", code="already_merged")
        if dst.status == IdeaStatus.MERGED:
            raise Conflict("The target idea was itself merged; merge into the idea it points to.", code="target_merged")
        already = set(IdeaSupport.objects.filter(idea=dst).values_list("user_id", flat=True))
        moving = list(IdeaSupport.objects.filter(idea=src).exclude(user_id__in=already).values_list("user_id", "created_at"))
        IdeaSupport.objects.bulk_create([IdeaSupport(idea=dst, user_id=uid, created_at=at) for uid, at in moving])
        IdeaSupport.objects.filter(idea=src).delete()
        followers = set(IdeaFollow.objects.filter(idea=dst).values_list("user_id", flat=True))
        IdeaFollow.objects.bulk_create([IdeaFollow(idea=dst, user_id=uid) for uid in
                                        IdeaFollow.objects.filter(idea=src).exclude(user_id__in=followers).values_list("user_id", flat=True)])
        moved_comments = IdeaComment.objects.filter(idea=src).update(idea=dst)
        dst.support_count = IdeaSupport.objects.filter(idea=dst).count()
        dst.comment_count = IdeaComment.objects.filter(idea=dst).count()
        dst.save(update_fields=["support_count", "comment_count", "updated_at"])
        old = src.status
        src.status, src.merged_into, src.support_count, src.comment_count = IdeaStatus.MERGED, dst, 0, 0
        src.official_answer = answer or f"Merged into “{dst.title}”."
        src.save(update_fields=["status", "merged_into", "support_count", "comment_count", "official_answer", "updated_at"])
        IdeaStatusChange.objects.create(idea=src, from_status=old, to_status=IdeaStatus.MERGED, answer=src.official_answer, actor=actor)
        for comment in IdeaComment.objects.filter(idea=dst).only("pk", "body"):
            search.index_object(kind=SearchDocument.Kind.COMMENT, object_id=comment.pk, community=dst.community,
                                url=f"{idea_url(dst)}#comment-{comment.pk}", title=dst.title, body=comment.body)
        record_audit(actor=actor, action="idea.merged", obj=src, community=src.community,
                     changes={"into": dst.pk, "supports_moved": len(moving), "comments_moved": moved_comments})
        _notify(_people_to_tell(dst, exclude_id=actor.pk, supporters=True), name="cocreation.idea_status_changed",
                community=src.community, payload={"idea_id": src.pk, "title": src.title, "status": IdeaStatus.MERGED,
                                                  "answer": src.official_answer[:300], "url": idea_url(dst)})
        publish_event(name="cocreation.idea_updated", community=src.community,
                      payload={"idea_id": src.pk, "status": IdeaStatus.MERGED, "merged_into": dst.pk})
    return dst


# =============================================================================================
# Surveys
# =============================================================================================


def survey_url(survey: Survey) -> str:
    return reverse("cocreation:survey", args=[survey.community.slug, survey.pk])


def _validated_question(raw: dict, index: int, errors: dict) -> dict | None:
    key = f"questions.{index}"
    kind = raw.get("kind")
    prompt = clean_text(raw.get("prompt"))
    choices = [clean_text(c) for c in (raw.get("choices") or []) if clean_text(c)]
    problems = []
    if kind not in QuestionKind.values:
        problems.append(f"Kind must be one of: {', '.join(QuestionKind.values)}.")
    if not prompt or len(prompt) > 500:
        problems.append("Give a question of 1 to 500 characters.")
    if kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
        if not 2 <= len(choices) <= 20 or any(len(c) > 200 for c in choices) or len(set(choices)) != len(choices):
            problems.append("Give 2 to 20 different options of up to 200 characters.")
    else:
        choices = []
    if problems:
        errors[key] = problems
        return None
    return {"kind": kind, "prompt": prompt, "required": bool(raw.get("required", True)), "choices": choices}


def create_survey(*, actor, community, title: str, description: str = "", anonymous: bool = True,
                  results_visible_to_respondents: bool = False, opens_at: datetime | None = None,
                  closes_at: datetime | None = None, questions: list[dict] | None = None) -> Survey:
    permissions.require_manage(actor, community)
    title, description = clean_text(title), clean_text(description)
    opens_at = opens_at or timezone.now()
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    _check_text(errors, "description", description, maximum=5000, required=False)
    if closes_at is not None and closes_at <= opens_at:
        errors["closes_at"] = ["The survey must close after it opens."]
    raw_questions = questions or []
    if len(raw_questions) > 50:
        errors["questions"] = ["At most 50 questions."]
    cleaned = [_validated_question(q, i, errors) for i, q in enumerate(raw_questions[:50])]
    _refuse("The survey was not created.", errors)
    with transaction.atomic():
        survey = Survey.objects.create(
            community=community, title=title, description=description, anonymous=anonymous,
            results_visible_to_respondents=results_visible_to_respondents, opens_at=opens_at, closes_at=closes_at,
            created_by=actor,
        )
        SurveyQuestion.objects.bulk_create([SurveyQuestion(survey=survey, position=i + 1, **q) for i, q in enumerate(cleaned)])
        _index_survey(survey)
        record_audit(actor=actor, action="survey.created", obj=survey, community=community,
                     changes={"title": title, "questions": len(cleaned), "anonymous": anonymous})
        publish_event(name="cocreation.survey_created", community=community, payload={"survey_id": survey.pk, "title": title})
    return survey


def _index_survey(survey: Survey) -> None:
    prompts = "\n".join(SurveyQuestion.objects.filter(survey=survey).values_list("prompt", flat=True))
    search.index_object(kind=SearchDocument.Kind.SURVEY, object_id=survey.pk, community=survey.community,
                        url=survey_url(survey), title=survey.title, body=f"{survey.description}\n{prompts}")


def add_question(*, actor, survey: Survey, kind: str, prompt: str, required: bool = True,
                 choices: list[str] | None = None) -> SurveyQuestion:
    permissions.require_manage(actor, survey.community)
    errors: dict = {}
    cleaned = _validated_question({"kind": kind, "prompt": prompt, "required": required, "choices": choices}, 0, errors)
    if errors:
        raise InvalidInput("The question was not added.", field_errors={"question": errors["questions.0"]})
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        if SurveyResponse.objects.filter(survey=locked).exists():
            raise Conflict("People have answered already; questions can no longer change.", code="survey_answered")
        position = (SurveyQuestion.objects.filter(survey=locked).order_by("-position").values_list("position", flat=True).first() or 0) + 1
        question = SurveyQuestion.objects.create(survey=locked, position=position, **cleaned)
        _index_survey(locked)
        record_audit(actor=actor, action="survey.question_added", obj=question, community=locked.community,
                     changes={"kind": kind, "prompt": cleaned["prompt"]})
    return question


def close_survey(*, actor, survey: Survey) -> Survey:
    permissions.require_manage(actor, survey.community)
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        now = timezone.now()
        if locked.closes_at is not None and locked.closes_at <= now:
            raise Conflict("The survey is already closed.", code="survey_closed")
        if locked.opens_at >= now:
            locked.opens_at = now - timezone.timedelta(seconds=1)
        locked.closes_at = now
        locked.save(update_fields=["closes_at", "opens_at"])
        record_audit(actor=actor, action="survey.closed", obj=locked, community=locked.community)
        publish_event(name="cocreation.survey_closed", community=locked.community, payload={"survey_id": locked.pk})
    return locked


def set_results_visibility(*, actor, survey: Survey, visible: bool) -> Survey:
    permissions.require_manage(actor, survey.community)
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        if locked.results_visible_to_respondents != visible:
            locked.results_visible_to_respondents = visible
            locked.save(update_fields=["results_visible_to_respondents"])
            record_audit(actor=actor, action="survey.results_visibility_changed", obj=locked, community=locked.community,
                         changes={"results_visible_to_respondents": visible})
    return locked


def create_survey_invitations(*, actor, survey: Survey, count: int, label: str = "") -> list[SurveyInvitation]:
    permissions.require_manage(actor, survey.community)
    label = clean_text(label)
    errors: dict = {}
    if not 1 <= int(count) <= 1000:
        errors["count"] = ["Between 1 and 1000 invitations at a time."]
    _check_text(errors, "label", label, maximum=120, required=False)
    _refuse("No invitations were created.", errors)
    with transaction.atomic():
        created = SurveyInvitation.objects.bulk_create(
            [SurveyInvitation(survey=survey, token=secrets.token_urlsafe(18), label=label) for _ in range(int(count))]
        )
        record_audit(actor=actor, action="survey.invitations_created", obj=survey, community=survey.community,
                     changes={"count": int(count), "label": label})
    return created


def survey_state(survey: Survey, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if survey.opens_at > now:
        return "scheduled"
    if survey.closes_at is not None and survey.closes_at <= now:
        return "closed"
    return "open"


def _validated_answers(questions: list[SurveyQuestion], answers: dict) -> tuple[list[tuple], dict]:
    rows: list[tuple] = []
    errors: dict = {}
    answers = {str(k): v for k, v in (answers or {}).items()}
    known = {str(q.pk) for q in questions}
    for stray in sorted(set(answers) - known):
        errors[f"answers.{stray}"] = ["No such question in this survey."]
    for q in questions:
        key = f"answers.{q.pk}"
        value = answers.get(str(q.pk))
        empty = value is None or value == "" or value == []
        if empty:
            if q.required:
                errors[key] = ["This question needs an answer."]
            continue
        try:
            if q.kind == QuestionKind.SINGLE:
                index = int(value)
                if not 0 <= index < len(q.choices):
                    raise ValueError
                rows.append((q, index, None, ""))
            elif q.kind == QuestionKind.MULTIPLE:
                values = value if isinstance(value, list) else [value]
                indexes = sorted({int(v) for v in values})
                if not indexes or any(not 0 <= i < len(q.choices) for i in indexes):
                    raise ValueError
                rows.extend((q, i, None, "") for i in indexes)
            elif q.kind == QuestionKind.LIKERT:
                if isinstance(value, bool) or not re.fullmatch(r"[1-5]", str(value).strip()):
                    raise ValueError
                number = int(str(value).strip())
                rows.append((q, None, float(number), ""))
            elif q.kind == QuestionKind.NUMBER:
                number = float(value)
                if number != number or abs(number) > 1e12:  # NaN or absurd
                    raise ValueError
                rows.append((q, None, number, ""))
            else:
                text = clean_text(value)
                if len(text) > 5000:
                    errors[key] = ["At most 5000 characters."]
                    continue
                if not text:
                    if q.required:
                        errors[key] = ["This question needs an answer."]
                    continue
                rows.append((q, None, None, text))
        except (TypeError, ValueError):
            hint = {
                QuestionKind.SINGLE: "Choose one of the options.",
                QuestionKind.MULTIPLE: "Choose one or more of the options.",
                QuestionKind.LIKERT: "Choose a whole number from 1 to 5.",
                QuestionKind.NUMBER: "Give a number.",
            }.get(q.kind, "Not a valid answer.")
            errors[key] = [hint]
    return rows, errors


def submit_response(*, survey: Survey, answers: dict, actor=None, token: str | None = None) -> SurveyResponse:
    """One response per member (actor) or per invitation token (people without an account)."""
    # The caller's copy may predate a close; the dates that decide are the stored ones.
    survey = Survey.objects.select_related("community").get(pk=survey.pk)
    invitation = None
    if token:
        invitation = SurveyInvitation.objects.filter(token=token, survey=survey).first()
        if invitation is None:
            raise NotFound("No such survey invitation.")
    else:
        if actor is None or not actor.is_authenticated:
            raise PermissionDenied("Sign in, or use the invitation link you were sent.")
        permissions.require_participate(actor, survey.community)
    state = survey_state(survey)
    if state != "open":
        raise Conflict("This survey is closed." if state == "closed" else "This survey has not opened yet.", code=f"survey_{state}")
    questions = list(SurveyQuestion.objects.filter(survey=survey).order_by("position"))
    rows, errors = _validated_answers(questions, answers)
    _refuse("Your answers were not saved.", errors)
    try:
        with transaction.atomic():
            if invitation is not None:
                # A conditional update: of two simultaneous submissions only one finds it unused.
                if not SurveyInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(used_at=timezone.now()):
                    raise Conflict("This invitation was already used to answer.", code="already_answered")
            else:
                SurveyParticipation.objects.create(survey=survey, user=actor)
            response = SurveyResponse.objects.create(
                survey=survey, respondent=None if (survey.anonymous or invitation) else actor,
                via_invitation=invitation is not None,
            )
            SurveyAnswer.objects.bulk_create(
                [SurveyAnswer(response=response, question=q, choice=c, number=n, text=t) for q, c, n, t in rows]
            )
            record_audit(actor=actor if invitation is None else None, action="survey.answered", obj=survey,
                         community=survey.community, changes={"via": "invitation" if invitation else "member"})
            publish_event(name="cocreation.survey_answered", community=survey.community,
                          payload={"survey_id": survey.pk, "responses": SurveyResponse.objects.filter(survey=survey).count()})
    except IntegrityError as exc:
        raise Conflict("You have already answered this survey.", code="already_answered") from exc
    return response


# =============================================================================================
# Workspaces
# =============================================================================================


def workspace_url(workspace: Workspace) -> str:
    return reverse("cocreation:workspace", args=[workspace.community.slug, workspace.pk])


def document_url(document: WorkspaceDocument) -> str:
    return reverse("cocreation:document", args=[document.workspace.community.slug, document.workspace_id, document.pk])


def _activity(workspace: Workspace, actor, verb: str, summary: str, extra: dict | None = None) -> WorkspaceActivity:
    """Feed row + a community event (live page refresh) + a personal notice to each collaborator."""
    entry = WorkspaceActivity.objects.create(workspace=workspace, actor=actor, verb=verb, summary=summary[:300])
    payload = {"workspace_id": workspace.pk, "verb": verb, "summary": summary[:300], "activity_id": entry.pk,
               "url": workspace_url(workspace), **(extra or {})}
    publish_event(name="cocreation.workspace_activity", community=workspace.community, payload=payload)
    collaborators = list(WorkspaceCollaborator.objects.filter(workspace=workspace).exclude(user_id=getattr(actor, "pk", None))
                         .values_list("user_id", flat=True))
    _notify(collaborators, name="cocreation.workspace_notice", community=workspace.community, payload=payload)
    return entry


def create_workspace(*, actor, community, title: str, description: str = "", call_text: str = "",
                     status: str = Workspace.Status.OPEN_CALL) -> Workspace:
    permissions.require_manage(actor, community)
    title, description, call_text = clean_text(title), clean_text(description), clean_text(call_text)
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    _check_text(errors, "description", description, maximum=5000, required=False)
    _check_text(errors, "call_text", call_text, maximum=5000, required=False)
    if status not in Workspace.Status.values:
        errors["status"] = [f"Choose one of: {', '.join(Workspace.Status.values)}."]
    _refuse("The workspace was not created.", errors)
    with transaction.atomic():
        workspace = Workspace.objects.create(community=community, title=title, description=description, call_text=call_text,
                                             status=status, calendar_token=secrets.token_urlsafe(24), created_by=actor)
        record_audit(actor=actor, action="workspace.created", obj=workspace, community=community, changes={"title": title})
        _activity(workspace, actor, "created", f"{actor.name}: {title}")
    return workspace


def set_workspace_status(*, actor, workspace: Workspace, status: str) -> Workspace:
    permissions.require_workspace(actor, "manage", workspace)
    if status not in Workspace.Status.values:
        raise InvalidInput("Unknown status.", field_errors={"status": [f"Choose one of: {', '.join(Workspace.Status.values)}."]})
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().select_related("community").get(pk=workspace.pk)
        if locked.status != status:
            old, locked.status = locked.status, status
            locked.save(update_fields=["status"])
            record_audit(actor=actor, action="workspace.status_changed", obj=locked, community=locked.community,
                         changes={"status": [old, status]})
            _activity(locked, actor, "status", f"{actor.name}: {Workspace.Status(status).label}")
    return locked


def apply_to_workspace(*, actor, workspace: Workspace, motivation: str) -> WorkspaceApplication:
    if not permissions.can_workspace(actor, "apply", workspace):
        permissions.require_workspace(actor, "view_call", workspace)
        if workspace.status != Workspace.Status.OPEN_CALL:
            raise Conflict("This workspace is not taking applications.", code="call_closed")
        raise Conflict("You are already part of this workspace.", code="already_collaborator")
    motivation = clean_text(motivation)
    errors: dict = {}
    _check_text(errors, "motivation", motivation, maximum=3000, minimum=10)
    _refuse("The application was not sent.", errors)
    try:
        with transaction.atomic():
            application = WorkspaceApplication.objects.create(workspace=workspace, applicant=actor, motivation=motivation)
            record_audit(actor=actor, action="workspace.applied", obj=application, community=workspace.community)
            _activity(workspace, actor, "applied", f"{actor.name}")
    except IntegrityError as exc:
        raise Conflict("You have already applied.", code="already_applied") from exc
    return application


def decide_application(*, actor, application: WorkspaceApplication, accept: bool) -> WorkspaceApplication:
    workspace = application.workspace
    permissions.require_workspace(actor, "manage", workspace)
    with transaction.atomic():
        locked = WorkspaceApplication.objects.select_for_update(of=("self",)).select_related("applicant").get(pk=application.pk)
        if locked.status != WorkspaceApplication.Status.PENDING:
            raise Conflict("This application was already decided.", code="already_decided")
        locked.status = WorkspaceApplication.Status.ACCEPTED if accept else WorkspaceApplication.Status.DECLINED
        locked.decided_by, locked.decided_at = actor, timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        if accept:
            WorkspaceCollaborator.objects.get_or_create(workspace=workspace, user=locked.applicant,
                                                        defaults={"role": CollaboratorRole.COLLABORATOR})
        record_audit(actor=actor, action="workspace.application_decided", obj=locked, community=workspace.community,
                     changes={"status": locked.status, "applicant_id": locked.applicant_id})
        publish_event(name="cocreation.application_decided", community=workspace.community, recipient=locked.applicant,
                      payload={"workspace_id": workspace.pk, "title": workspace.title, "status": locked.status,
                               "url": workspace_url(workspace)})
        if accept:
            _activity(workspace, actor, "joined", locked.applicant.name)
    permissions.forget_workspace_roles(locked.applicant)
    return locked


def add_collaborator(*, actor, workspace: Workspace, email: str, role: str = CollaboratorRole.EXPERT) -> WorkspaceCollaborator:
    """Bring in someone by their account's e-mail — typically an outside expert who is not a member."""
    from django.contrib.auth import get_user_model

    permissions.require_workspace(actor, "manage", workspace)
    errors: dict = {}
    if role not in CollaboratorRole.values:
        errors["role"] = [f"Choose one of: {', '.join(CollaboratorRole.values)}."]
    person = get_user_model().objects.filter(email__iexact=(email or "").strip()).first()
    if person is None:
        errors["email"] = ["No account uses this e-mail address; ask them to sign up first."]
    _refuse("Nobody was added.", errors)
    try:
        with transaction.atomic():
            collaborator = WorkspaceCollaborator.objects.create(workspace=workspace, user=person, role=role)
            record_audit(actor=actor, action="workspace.collaborator_added", obj=collaborator, community=workspace.community,
                         changes={"user_id": person.pk, "role": role})
            publish_event(name="cocreation.workspace_invited", community=workspace.community, recipient=person,
                          payload={"workspace_id": workspace.pk, "title": workspace.title, "role": role, "url": workspace_url(workspace)})
            _activity(workspace, actor, "joined", person.name)
    except IntegrityError as exc:
        raise Conflict("This person is already in the workspace.", code="already_collaborator") from exc
    permissions.forget_workspace_roles(person)
    return collaborator


def _index_document(document: WorkspaceDocument) -> None:
    search.index_object(kind=SearchDocument.Kind.DOCUMENT, object_id=document.pk, community=document.workspace.community,
                        workspace=document.workspace, url=document_url(document), title=document.title, body=document.body)


def _validated_document(title: str, body: str) -> tuple[str, str]:
    title = clean_text(title)
    body = CONTROL.sub("", str(body or "")).replace("\r\n", "\n").replace("\r", "\n")
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    if len(body) > MAX_DOCUMENT:
        errors["body"] = [f"At most {MAX_DOCUMENT} characters (this has {len(body)})."]
    _refuse("The document was not saved.", errors)
    return title, body


def create_document(*, actor, workspace: Workspace, title: str, body: str = "") -> WorkspaceDocument:
    permissions.require_workspace(actor, "create_document", workspace)
    title, body = _validated_document(title, body)
    with transaction.atomic():
        document = WorkspaceDocument.objects.create(workspace=workspace, title=title, body=body, body_html=render_markdown(body),
                                                    version=1, updated_by=actor)
        DocumentVersion.objects.create(document=document, number=1, title=title, body=body, author=actor)
        _index_document(document)
        record_audit(actor=actor, action="document.created", obj=document, community=workspace.community, changes={"title": title})
        _activity(workspace, actor, "document", f"{actor.name}: {title} (v1)", {"document_id": document.pk})
    return document


class DocumentConflict(Conflict):
    """A save from an old version. Carries both texts so nothing typed is lost."""

    code = "edit_conflict"

    def __init__(self, message: str, *, current: WorkspaceDocument, yours_title: str, yours_body: str, base_version: int):
        super().__init__(message)
        self.current = current
        self.yours_title = yours_title
        self.yours_body = yours_body
        self.base_version = base_version


def save_document(*, actor, document: WorkspaceDocument, title: str, body: str, base_version: int) -> WorkspaceDocument:
    """Save a new version — only if nobody saved since `base_version`; otherwise DocumentConflict."""
    workspace = document.workspace
    permissions.require_workspace(actor, "edit_document", workspace)
    title, body = _validated_document(title, body)
    try:
        base_version = int(base_version)
    except (TypeError, ValueError):
        raise InvalidInput("The document was not saved.", field_errors={"base_version": ["Give the version you edited."]}) from None
    with transaction.atomic():
        locked = WorkspaceDocument.objects.select_for_update(of=("self",)).select_related("workspace__community").get(pk=document.pk)
        if locked.version != base_version:
            raise DocumentConflict(
                f"Someone saved version {locked.version} while you were editing version {base_version}. "
                "Nothing was overwritten: compare both texts and save again.",
                current=locked, yours_title=title, yours_body=body, base_version=base_version,
            )
        if locked.title == title and locked.body == body:
            return locked
        locked.version += 1
        locked.title, locked.body, locked.body_html, locked.updated_by = title, body, render_markdown(body), actor
        locked.save(update_fields=["version", "title", "body", "body_html", "updated_by", "updated_at"])
        DocumentVersion.objects.create(document=locked, number=locked.version, title=title, body=body, author=actor)
        _index_document(locked)
        record_audit(actor=actor, action="document.saved", obj=locked, community=workspace.community,
                     changes={"version": [base_version, locked.version]})
        _activity(workspace, actor, "document", f"{actor.name}: {title} (v{locked.version})", {"document_id": locked.pk})
    return locked


def _validated_milestone(title, description, starts_on, due_on) -> tuple[str, str, date, date]:
    title, description = clean_text(title), clean_text(description)
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    _check_text(errors, "description", description, maximum=2000, required=False)
    if not isinstance(due_on, date):
        errors["due_on"] = ["Give a date."]
    if starts_on is None:
        starts_on = due_on
    if not isinstance(starts_on, date):
        errors["starts_on"] = ["Give a date."]
    elif isinstance(due_on, date) and due_on < starts_on:
        errors["due_on"] = ["The due date cannot be before the start."]
    _refuse("The milestone was not saved.", errors)
    return title, description, starts_on, due_on


def add_milestone(*, actor, workspace: Workspace, title: str, due_on: date, starts_on: date | None = None,
                  description: str = "") -> Milestone:
    permissions.require_workspace(actor, "manage_milestones", workspace)
    title, description, starts_on, due_on = _validated_milestone(title, description, starts_on, due_on)
    with transaction.atomic():
        milestone = Milestone.objects.create(workspace=workspace, title=title, description=description,
                                             starts_on=starts_on, due_on=due_on)
        record_audit(actor=actor, action="milestone.created", obj=milestone, community=workspace.community,
                     changes={"title": title, "due_on": due_on.isoformat()})
        _activity(workspace, actor, "milestone", f"{actor.name}: {title} — {due_on.isoformat()}")
    return milestone


def update_milestone(*, actor, milestone: Milestone, title: str | None = None, description: str | None = None,
                     starts_on: date | None = None, due_on: date | None = None, done: bool | None = None) -> Milestone:
    workspace = milestone.workspace
    permissions.require_workspace(actor, "manage_milestones", workspace)
    title, description, starts_on, due_on = _validated_milestone(
        milestone.title if title is None else title, milestone.description if description is None else description,
        milestone.starts_on if starts_on is None else starts_on, milestone.due_on if due_on is None else due_on)
    with transaction.atomic():
        locked = Milestone.objects.select_for_update().get(pk=milestone.pk)
        new = {"title": title, "description": description, "starts_on": starts_on, "due_on": due_on,
               "done": locked.done if done is None else bool(done)}
        changes = {k: [str(getattr(locked, k)), str(v)] for k, v in new.items() if getattr(locked, k) != v}
        if changes:
            for key, value in new.items():
                setattr(locked, key, value)
            locked.sequence += 1
            locked.save()
            record_audit(actor=actor, action="milestone.updated", obj=locked, community=workspace.community, changes=changes)
            _activity(workspace, actor, "milestone", f"{actor.name}: {locked.title}{' ✓' if locked.done else ''}")
    return locked


def revoke_calendar_token(*, actor, workspace: Workspace) -> Workspace:
    permissions.require_workspace(actor, "manage", workspace)
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().select_related("community").get(pk=workspace.pk)
        locked.calendar_token = secrets.token_urlsafe(24)
        locked.save(update_fields=["calendar_token"])
        record_audit(actor=actor, action="workspace.calendar_token_revoked", obj=locked, community=locked.community)
    return locked


def start_thread(*, actor, workspace: Workspace, title: str, body: str) -> WorkspaceThread:
    permissions.require_workspace(actor, "start_thread", workspace)
    title, body = clean_text(title), clean_text(body)
    errors: dict = {}
    _check_text(errors, "title", title, maximum=140)
    _check_text(errors, "body", body, maximum=5000)
    _refuse("The thread was not started.", errors)
    with transaction.atomic():
        thread = WorkspaceThread.objects.create(workspace=workspace, title=title, author=actor)
        WorkspacePost.objects.create(thread=thread, author=actor, body=body)
        record_audit(actor=actor, action="workspace.thread_started", obj=thread, community=workspace.community, changes={"title": title})
        _activity(workspace, actor, "thread", f"{actor.name}: {title}", {"thread_id": thread.pk})
    return thread


def post_in_thread(*, actor, thread: WorkspaceThread, body: str) -> WorkspacePost:
    workspace = thread.workspace
    permissions.require_workspace(actor, "post", workspace)
    body = clean_text(body)
    errors: dict = {}
    _check_text(errors, "body", body, maximum=5000)
    _refuse("The message was not posted.", errors)
    with transaction.atomic():
        post = WorkspacePost.objects.create(thread=thread, author=actor, body=body)
        record_audit(actor=actor, action="workspace.posted", obj=post, community=workspace.community, changes={"thread_id": thread.pk})
        _activity(workspace, actor, "post", f"{actor.name}: {thread.title}", {"thread_id": thread.pk})
    return post
