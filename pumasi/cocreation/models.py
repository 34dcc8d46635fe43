"""Database models of the cocreation capability.

Sections: idea boards (Rhodes type 3), search index, surveys, workspaces (type 4).
Issue 6 adds designs and production in their own section below these.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

USER = settings.AUTH_USER_MODEL


# ---------------------------------------------------------------------------------------------
# Idea boards
# ---------------------------------------------------------------------------------------------


class IdeaBoard(models.Model):
    """An organiser's open question to the community, with a theme and a closing date."""

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="idea_boards")
    title = models.CharField(_("title"), max_length=140)
    question = models.TextField(_("question"), max_length=2000)
    theme = models.CharField(_("theme"), max_length=80, blank=True)
    categories = models.JSONField(_("categories"), default=list, blank=True)
    closes_at = models.DateTimeField(_("closes at"), null=True, blank=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(title=""), name="ideaboard_title_not_empty")]

    def __str__(self) -> str:
        return self.title


class IdeaStatus(models.TextChoices):
    NEW = "new", _("New")
    UNDER_REVIEW = "under_review", _("Under review")
    ACCEPTED = "accepted", _("Accepted")
    IMPLEMENTED = "implemented", _("Implemented")
    DECLINED = "declined", _("Declined")
    MERGED = "merged", _("Merged")


class Idea(models.Model):
    board = models.ForeignKey(IdeaBoard, on_delete=models.CASCADE, related_name="ideas")
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="ideas")
    title = models.CharField(_("title"), max_length=140)
    body = models.TextField(_("text"), max_length=10000)
    category = models.CharField(_("category"), max_length=60, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=IdeaStatus.choices, default=IdeaStatus.NEW)
    # The organisers' latest official answer (the full history is in IdeaStatusChange).
    official_answer = models.TextField(_("official answer"), blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from")
    # Kept by the services in the same transaction as the rows they count, so a list page
    # never has to count per row.
    support_count = models.PositiveIntegerField(default=0)
    comment_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["board", "-id"]),
            models.Index(fields=["board", "-support_count", "-id"]),
            models.Index(fields=["board", "status", "-id"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="idea_title_not_empty"),
            models.CheckConstraint(condition=~Q(body=""), name="idea_body_not_empty"),
            models.CheckConstraint(condition=Q(status__in=IdeaStatus.values), name="idea_status_valid"),
            models.CheckConstraint(
                condition=(Q(status="merged") & Q(merged_into__isnull=False)) | (~Q(status="merged") & Q(merged_into__isnull=True)),
                name="idea_merged_has_target",
            ),
            models.CheckConstraint(condition=~Q(merged_into=F("id")), name="idea_not_merged_into_itself"),
        ]

    def __str__(self) -> str:
        return self.title


class IdeaImage(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to="ideas/%Y/%m/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"image {self.pk} of idea {self.idea_id}"



class IdeaSupport(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="supports")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="idea_supports")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["idea", "user"], name="ideasupport_once_per_person")]
        indexes = [models.Index(fields=["idea", "created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} supports {self.idea_id}"



class IdeaComment(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="ideacomment_body_not_empty")]

    def __str__(self) -> str:
        return self.body[:40]



class IdeaFollow(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="follows")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["idea", "user"], name="ideafollow_once_per_person")]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.idea_id}"



class IdeaStatusChange(models.Model):
    """One move in the public workflow, with the official answer given for it."""

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=IdeaStatus.choices)
    to_status = models.CharField(max_length=20, choices=IdeaStatus.choices)
    answer = models.TextField(max_length=5000)
    actor = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(answer=""), name="ideastatuschange_answer_not_empty")]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"



# ---------------------------------------------------------------------------------------------
# Search index (ideas, comments, surveys, workspace documents)
# ---------------------------------------------------------------------------------------------


class SearchDocument(models.Model):
    """One searchable thing. On SQLite its text is mirrored in the FTS5 trigram table
    `cocreation_search_fts` (rowid = id); on PostgreSQL pg_trgm GIN indexes cover title/body."""

    class Kind(models.TextChoices):
        IDEA = "idea", _("Idea")
        COMMENT = "comment", _("Comment")
        SURVEY = "survey", _("Survey")
        DOCUMENT = "document", _("Document")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    object_id = models.BigIntegerField()
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    # Set for workspace documents: only people who may see the workspace find them.
    workspace = models.ForeignKey("cocreation.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=300)
    title = models.CharField(max_length=300)
    body = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="searchdocument_one_per_object")]
        indexes = [models.Index(fields=["community", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind}#{self.object_id}"



# ---------------------------------------------------------------------------------------------
# Surveys
# ---------------------------------------------------------------------------------------------


class Survey(models.Model):
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="surveys")
    title = models.CharField(_("title"), max_length=140)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    anonymous = models.BooleanField(_("anonymous"), default=True)
    results_visible_to_respondents = models.BooleanField(_("respondents may see results"), default=False)
    opens_at = models.DateTimeField(_("opens at"))
    closes_at = models.DateTimeField(_("closes at"), null=True, blank=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="survey_title_not_empty"),
            models.CheckConstraint(condition=Q(closes_at__isnull=True) | Q(closes_at__gt=F("opens_at")), name="survey_closes_after_opening"),
        ]

    def __str__(self) -> str:
        return self.title


class QuestionKind(models.TextChoices):
    SINGLE = "single", _("Single choice")
    MULTIPLE = "multiple", _("Multiple choice")
    LIKERT = "likert", _("Likert scale 1–5")
    NUMBER = "number", _("Number")
    TEXT = "text", _("Free text")


class SurveyQuestion(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=QuestionKind.choices)
    prompt = models.CharField(max_length=500)
    required = models.BooleanField(default=True)
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="surveyquestion_position_unique"),
            models.CheckConstraint(condition=Q(kind__in=QuestionKind.values), name="surveyquestion_kind_valid"),
            models.CheckConstraint(condition=~Q(prompt=""), name="surveyquestion_prompt_not_empty"),
        ]

    def __str__(self) -> str:
        return self.prompt


class SurveyInvitation(models.Model):
    """A one-response token for someone without an account."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=120, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"invitation to survey {self.survey_id}"



class SurveyParticipation(models.Model):
    """That a member has answered — kept apart from the response so anonymous answers stay
    unlinked while the one-response rule is still held by the database."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="participations")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "user"], name="surveyparticipation_once")]

    def __str__(self) -> str:
        return f"{self.user_id} answered {self.survey_id}"



class SurveyResponse(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    # Only for named surveys; anonymous responses carry no person.
    respondent = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    via_invitation = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "respondent"], condition=Q(respondent__isnull=False), name="surveyresponse_once_per_respondent"
            ),
        ]

    def __str__(self) -> str:
        return f"response {self.pk} to survey {self.survey_id}"



class SurveyAnswer(models.Model):
    """One answer; a multiple-choice question has one row per chosen option."""

    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(SurveyQuestion, on_delete=models.CASCADE, related_name="answers")
    choice = models.PositiveIntegerField(null=True, blank=True)
    number = models.FloatField(null=True, blank=True)
    text = models.TextField(blank=True, max_length=5000)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response", "question", "choice"], condition=Q(choice__isnull=False), name="surveyanswer_choice_once"
            ),
            models.UniqueConstraint(
                fields=["response", "question"], condition=Q(choice__isnull=True), name="surveyanswer_value_once"
            ),
        ]

    def __str__(self) -> str:
        return f"answer to {self.question_id}"



# ---------------------------------------------------------------------------------------------
# Workspaces
# ---------------------------------------------------------------------------------------------


class Workspace(models.Model):
    class Status(models.TextChoices):
        OPEN_CALL = "open_call", _("Open call")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="workspaces")
    title = models.CharField(_("title"), max_length=140)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    call_text = models.TextField(_("open call"), max_length=5000, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN_CALL)
    # The secret in the private iCalendar URL; replaced (old URL dead) when revoked.
    calendar_token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="workspace_title_not_empty"),
            models.CheckConstraint(condition=Q(status__in=["open_call", "active", "closed"]), name="workspace_status_valid"),
        ]

    def __str__(self) -> str:
        return self.title


class CollaboratorRole(models.TextChoices):
    COLLABORATOR = "collaborator", _("Collaborator")
    EXPERT = "expert", _("Outside expert")


class WorkspaceApplication(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="applications")
    applicant = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    motivation = models.TextField(max_length=3000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "applicant"], name="workspaceapplication_once"),
            models.CheckConstraint(condition=Q(status__in=["pending", "accepted", "declined"]), name="workspaceapplication_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.applicant_id} → {self.workspace_id} ({self.status})"



class WorkspaceCollaborator(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="collaborators")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="workspace_roles")
    role = models.CharField(max_length=12, choices=CollaboratorRole.choices)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="workspacecollaborator_once"),
            models.CheckConstraint(condition=Q(role__in=["collaborator", "expert"]), name="workspacecollaborator_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.workspace_id} as {self.role}"



class WorkspaceDocument(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=140)
    body = models.TextField(blank=True)  # Markdown as typed; escaped wherever it is shown raw
    body_html = models.TextField(blank=True)  # rendered and sanitised with nh3 when saved
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="workspacedocument_title_not_empty"),
            models.CheckConstraint(condition=Q(version__gte=1), name="workspacedocument_version_positive"),
        ]

    def __str__(self) -> str:
        return self.title



class DocumentVersion(models.Model):
    document = models.ForeignKey(WorkspaceDocument, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=140)
    body = models.TextField(blank=True)
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="documentversion_number_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="documentversion_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} v{self.number}"



class Milestone(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(max_length=140)
    description = models.TextField(max_length=2000, blank=True)
    starts_on = models.DateField()
    due_on = models.DateField()
    done = models.BooleanField(default=False)
    # Bumped on each change so calendar clients replace their copy (iCalendar SEQUENCE).
    sequence = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="milestone_title_not_empty"),
            models.CheckConstraint(condition=Q(due_on__gte=F("starts_on")), name="milestone_due_after_start"),
        ]

    def __str__(self) -> str:
        return self.title



class WorkspaceThread(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="threads")
    title = models.CharField(max_length=140)
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(title=""), name="workspacethread_title_not_empty")]

    def __str__(self) -> str:
        return self.title



class WorkspacePost(models.Model):
    thread = models.ForeignKey(WorkspaceThread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="workspacepost_body_not_empty")]

    def __str__(self) -> str:
        return self.body[:40]



class WorkspaceActivity(models.Model):
    """The workspace's own feed: every change inside it, in order."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    verb = models.CharField(max_length=40)
    summary = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"])]

    def __str__(self) -> str:
        return self.summary



# ---------------------------------------------------------------------------------------------
# Community product design (Rhodes type 5; issue 6): design calls, designs and their community
# scores, and the production of a chosen design (plans and production orders). The product,
# its stock and its sale live in pumasi.market.
# ---------------------------------------------------------------------------------------------


class DesignCall(models.Model):
    """An organiser's call for designs: a brief, a deadline and the royalty terms, all up front."""

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="design_calls")
    title = models.CharField(_("title"), max_length=140)
    brief = models.TextField(_("brief"), max_length=5000)
    submissions_close_at = models.DateTimeField(_("submissions close"))
    scoring_closes_at = models.DateTimeField(_("scoring closes"))
    royalty_bp = models.PositiveIntegerField(_("designer royalty (basis points of the margin)"))
    terms = models.TextField(_("terms"), max_length=3000, blank=True)
    public = models.BooleanField(_("anyone may see the call"), default=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="designcall_title_not_empty"),
            models.CheckConstraint(condition=~Q(brief=""), name="designcall_brief_not_empty"),
            models.CheckConstraint(condition=Q(scoring_closes_at__gt=F("submissions_close_at")),
                                   name="designcall_scoring_after_submissions"),
            models.CheckConstraint(condition=Q(royalty_bp__gte=1, royalty_bp__lte=10000), name="designcall_royalty_range"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def royalty_percent(self):
        from decimal import Decimal

        return Decimal(self.royalty_bp) / 100


class Design(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        SELECTED = "selected", _("Selected for production")

    call = models.ForeignKey(DesignCall, on_delete=models.CASCADE, related_name="designs")
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    designer = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="designs")
    title = models.CharField(_("title"), max_length=140)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    image = models.ImageField(upload_to="designs/%Y/%m/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    # Kept with the scores in the same transaction, so ranking needs no aggregate per row.
    score_sum = models.PositiveIntegerField(default=0)
    score_count = models.PositiveIntegerField(default=0)
    product = models.OneToOneField("market.Product", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="design")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["call", "-id"])]
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="design_title_not_empty"),
            models.CheckConstraint(condition=Q(status__in=["submitted", "selected"]), name="design_status_valid"),
            models.CheckConstraint(condition=Q(score_sum__lte=F("score_count") * 5), name="design_score_sum_range"),
            models.CheckConstraint(condition=~Q(status="selected") | Q(product__isnull=False),
                                   name="design_selected_has_product"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.score_count if self.score_count else None


class DesignVariant(models.Model):
    design = models.ForeignKey(Design, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("variant"), max_length=80)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["design", "label"], name="designvariant_label_once"),
            models.CheckConstraint(condition=~Q(label=""), name="designvariant_label_not_empty"),
        ]

    def __str__(self) -> str:
        return self.label


class DesignScore(models.Model):
    """One member's score (0–5) of one design, given once while the call's scoring is open."""

    design = models.ForeignKey(Design, on_delete=models.CASCADE, related_name="scores")
    voter = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["design", "voter"], name="designscore_once_per_member"),
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=5), name="designscore_range"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5 for design {self.design_id}"


class ProductionPlan(models.Model):
    """The designer's plan: how many of each variant, from which materials, by when."""

    class Kind(models.TextChoices):
        FIRST = "first", _("First production")
        REPRODUCTION = "reproduction", _("Re-production")

    product = models.ForeignKey("market.Product", on_delete=models.CASCADE, related_name="production_plans")
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    materials = models.TextField(_("materials"), max_length=2000, blank=True)
    target_date = models.DateField(_("target date"))
    unit_cost = models.BigIntegerField(help_text="the unit cost the organisers showed when the plan was made")
    note = models.CharField(_("note"), max_length=500, blank=True)
    requested_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["first", "reproduction"]), name="productionplan_kind_valid"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="productionplan_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} plan of product {self.product_id}"


class ProductionPlanLine(models.Model):
    plan = models.ForeignKey(ProductionPlan, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey("market.Variant", on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="productionplanline_quantity_positive"),
            models.UniqueConstraint(fields=["plan", "variant"], name="productionplanline_variant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant_id}"


class ProductionOrder(models.Model):
    """A requested production run: planned → in production → done → stocked."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        IN_PRODUCTION = "in_production", _("In production")
        DONE = "done", _("Done")
        STOCKED = "stocked", _("In stock")

    plan = models.OneToOneField(ProductionPlan, on_delete=models.CASCADE, related_name="order")
    product = models.ForeignKey("market.Product", on_delete=models.CASCADE, related_name="production_orders")
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PLANNED)
    external_ref = models.CharField(_("reference in the company's system"), max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["planned", "in_production", "done", "stocked"]),
                                   name="productionorder_status_valid"),
        ]

    def __str__(self) -> str:
        return f"production #{self.pk} ({self.status})"


class ProductionUpdate(models.Model):
    """Every move of a production order, from the organisers' UI or the company's system."""

    order = models.ForeignKey(ProductionOrder, on_delete=models.CASCADE, related_name="updates")
    status = models.CharField(max_length=14)
    note = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=10, default="ui")
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.status}"
