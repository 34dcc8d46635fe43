"""Co-creation pages. Each view parses, asks permissions/selectors, calls a service, renders."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.cocreation import charts, permissions, search, selectors, services
from pumasi.cocreation.models import CollaboratorRole, IdeaStatus, QuestionKind, SearchDocument, Workspace
from pumasi.communities.selectors import community_for
from pumasi.core.errors import DomainError, NotFound
from pumasi.core.forms import add_domain_error
from pumasi.platform import feeds

PAGE_SIZES = (10, 20, 50, 100)


def _community(request, slug: str):
    try:
        return community_for(request.user, slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _refuse(request, error: DomainError):
    if isinstance(error, NotFound):
        raise Http404(error.message)
    messages.error(request, _(error.message))


# --- forms ------------------------------------------------------------------------------------


class BoardForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    question = forms.CharField(label=gettext_lazy("Question to the community"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    theme = forms.CharField(label=gettext_lazy("Theme"), max_length=80, required=False)
    categories = forms.CharField(label=gettext_lazy("Categories (one per line)"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    closes_at = forms.DateTimeField(label=gettext_lazy("Closes at"), required=False,
                                    widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class IdeaForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    body = forms.CharField(label=gettext_lazy("Your idea"), widget=forms.Textarea(attrs={"rows": 6}), max_length=10000)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)
    images = forms.FileField(label=gettext_lazy("Images (up to 4, 5 MB each)"), required=False,
                             widget=forms.ClearableFileInput(attrs={"accept": "image/*"}))

    def __init__(self, *args, board=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "—")] + [(c, c) for c in (board.categories if board else [])]
        self.fields["images"].widget.allow_multiple_selected = True


class CommentForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Comment"), widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("New status"), choices=[c for c in IdeaStatus.choices if c[0] != "merged"])
    answer = forms.CharField(label=gettext_lazy("Official answer"), widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)


class MergeForm(forms.Form):
    target = forms.IntegerField(label=gettext_lazy("Merge into idea number"), min_value=1)
    answer = forms.CharField(label=gettext_lazy("Note to supporters"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)


class SurveyForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    description = forms.CharField(label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    anonymous = forms.BooleanField(label=gettext_lazy("Anonymous (answers are not linked to people)"), required=False, initial=True)
    results_visible_to_respondents = forms.BooleanField(label=gettext_lazy("Respondents may see the results"), required=False)
    opens_at = forms.DateTimeField(label=gettext_lazy("Opens at"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    closes_at = forms.DateTimeField(label=gettext_lazy("Closes at"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class QuestionForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=QuestionKind.choices)
    prompt = forms.CharField(label=gettext_lazy("Question"), max_length=500)
    choices = forms.CharField(label=gettext_lazy("Options (one per line, for choice questions)"),
                              widget=forms.Textarea(attrs={"rows": 4}), required=False)
    required = forms.BooleanField(label=gettext_lazy("An answer is required"), required=False, initial=True)


class WorkspaceForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    description = forms.CharField(label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    call_text = forms.CharField(label=gettext_lazy("Open call: whom you are looking for"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)


class DocumentForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    body = forms.CharField(label=gettext_lazy("Text (Markdown)"), widget=forms.Textarea(attrs={"rows": 16}), required=False)
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class MilestoneForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Milestone"), max_length=140)
    starts_on = forms.DateField(label=gettext_lazy("Starts on"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    due_on = forms.DateField(label=gettext_lazy("Due on"), widget=forms.DateInput(attrs={"type": "date"}))
    description = forms.CharField(label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)


class ThreadForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Subject"), max_length=140)
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)


class PostForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Reply"), widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)


# --- idea boards ------------------------------------------------------------------------------


@login_required
def boards(request, slug: str):
    community = _community(request, slug)
    return render(request, "cocreation/boards.html", {
        "community": community, "boards": selectors.boards(community),
        "may_manage": permissions.is_manager(request.user, community),
    })


@login_required
def board_new(request, slug: str):
    community = _community(request, slug)
    form = BoardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            board = services.create_board(actor=request.user, community=community, title=data["title"], question=data["question"],
                                          theme=data["theme"], categories=data["categories"].splitlines(), closes_at=data["closes_at"])
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The board is open."))
            return redirect("cocreation:board", slug, board.pk)
    return render(request, "cocreation/form.html", {"community": community, "form": form, "title": _("Open an idea board"),
                                                     "back": ("cocreation:boards", [slug])})


@login_required
def board(request, slug: str, board_id: int):
    community = _community(request, slug)
    the_board = selectors.board(community, board_id)
    sort = request.GET.get("sort", "new")
    status = request.GET.get("status") or None
    category = request.GET.get("category") or None
    try:
        size = int(request.GET.get("size", 20))
    except ValueError:
        size = 20
    size = size if size in PAGE_SIZES else 20
    try:
        qs = selectors.ideas(the_board, user=request.user, sort=sort, status=status, category=category)
    except DomainError as error:
        messages.error(request, _(error.message))
        sort, status, category = "new", None, None
        qs = selectors.ideas(the_board, user=request.user)
    page = Paginator(qs, size).get_page(request.GET.get("page"))
    return render(request, "cocreation/board.html", {
        "community": community, "board": the_board, "page": page, "sort": sort, "status": status or "",
        "category": category or "", "size": size, "sizes": PAGE_SIZES,
        "sorts": [("new", _("Newest")), ("supported", _("Most supported")), ("trending", _("Trending"))],
        "statuses": IdeaStatus.choices, "may_participate": permissions.role_of(request.user, community) != "observer",
        "is_open": the_board.closes_at is None or the_board.closes_at > timezone.now(),
    })


@login_required
def idea_new(request, slug: str, board_id: int):
    community = _community(request, slug)
    the_board = selectors.board(community, board_id)
    form = IdeaForm(request.POST or None, request.FILES or None, board=the_board)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.create_idea(actor=request.user, board=the_board, title=data["title"], body=data["body"],
                                           category=data["category"], images=request.FILES.getlist("images"))
        except DomainError as error:
            if not error.field_errors:
                _refuse(request, error)
            add_domain_error(form, error)
        else:
            messages.success(request, _("Your idea is posted."))
            return redirect("cocreation:idea", slug, created.pk)
    return render(request, "cocreation/form.html", {"community": community, "form": form, "multipart": True,
                                                     "title": _("Post an idea"), "intro": the_board.question,
                                                     "back": ("cocreation:board", [slug, board_id])})


def _idea_page(request, community, the_idea, *, comment_form=None, status_form=None, merge_form=None, status=200):
    return render(request, "cocreation/idea.html", {
        "community": community, "idea": the_idea, "board": the_idea.board,
        "comments": selectors.flatten(selectors.comment_tree(the_idea)),
        "history": selectors.status_history(the_idea), "images": the_idea.images.all(),
        "comment_form": comment_form or CommentForm(), "status_form": status_form or StatusForm(),
        "merge_form": merge_form or MergeForm(), "may_manage": permissions.is_manager(request.user, community),
    }, status=status)


@login_required
def idea(request, slug: str, idea_id: int):
    community = _community(request, slug)
    return _idea_page(request, community, selectors.idea(community, idea_id, user=request.user))


@login_required
@require_POST
def idea_support(request, slug: str, idea_id: int):
    community = _community(request, slug)
    the_idea = selectors.idea(community, idea_id, user=request.user)
    try:
        if request.POST.get("action") == "withdraw":
            services.withdraw_support(actor=request.user, idea=the_idea)
            messages.success(request, _("You withdrew your support."))
        else:
            services.support_idea(actor=request.user, idea=the_idea)
            messages.success(request, _("You support this idea."))
    except DomainError as error:
        _refuse(request, error)
    return redirect("cocreation:idea", slug, idea_id)


@login_required
@require_POST
def idea_comment(request, slug: str, idea_id: int):
    community = _community(request, slug)
    the_idea = selectors.idea(community, idea_id, user=request.user)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            parent = selectors.comment(the_idea, form.cleaned_data["parent"]) if form.cleaned_data["parent"] else None
            created = services.comment_on_idea(actor=request.user, idea=the_idea, body=form.cleaned_data["body"], parent=parent)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            return redirect(f"{services.idea_url(the_idea)}#comment-{created.pk}")
    return _idea_page(request, community, the_idea, comment_form=form, status=422)


@login_required
@require_POST
def idea_follow(request, slug: str, idea_id: int):
    community = _community(request, slug)
    the_idea = selectors.idea(community, idea_id, user=request.user)
    try:
        services.follow_idea(actor=request.user, idea=the_idea, follow=request.POST.get("action") != "unfollow")
    except DomainError as error:
        _refuse(request, error)
    return redirect("cocreation:idea", slug, idea_id)


@login_required
@require_POST
def idea_status(request, slug: str, idea_id: int):
    community = _community(request, slug)
    the_idea = selectors.idea(community, idea_id, user=request.user)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.change_idea_status(actor=request.user, idea=the_idea, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The status was changed and supporters were told."))
            return redirect("cocreation:idea", slug, idea_id)
    return _idea_page(request, community, the_idea, status_form=form, status=422)


@login_required
@require_POST
def idea_merge(request, slug: str, idea_id: int):
    community = _community(request, slug)
    the_idea = selectors.idea(community, idea_id, user=request.user)
    form = MergeForm(request.POST)
    if form.is_valid():
        try:
            target = selectors.idea(community, form.cleaned_data["target"])
            merged = services.merge_ideas(actor=request.user, source=the_idea, target=target, answer=form.cleaned_data["answer"])
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The ideas were merged."))
            return redirect("cocreation:idea", slug, merged.pk)
    return _idea_page(request, community, the_idea, merge_form=form, status=422)


@login_required
def notifications(request):
    return render(request, "cocreation/notifications.html", {"events": selectors.notifications(request.user)})


@login_required
def search_page(request, slug: str):
    community = _community(request, slug)
    query = request.GET.get("q", "")
    kind = request.GET.get("kind", "")
    result, error = None, None
    if query.strip():
        try:
            result = search.search(community=community, query=query, kinds=[kind] if kind else None,
                                   workspace_ids=selectors.visible_workspace_ids(request.user, community))
        except DomainError as exc:
            error = exc
    return render(request, "cocreation/search.html", {
        "community": community, "query": query, "kind": kind, "result": result, "error": error,
        "kinds": SearchDocument.Kind.choices,
    })


# --- surveys ----------------------------------------------------------------------------------


@login_required
def surveys(request, slug: str):
    community = _community(request, slug)
    rows = [(s, services.survey_state(s)) for s in selectors.surveys(community)[:200]]
    return render(request, "cocreation/surveys.html", {"community": community, "surveys": rows,
                                                        "may_manage": permissions.is_manager(request.user, community)})


@login_required
def survey_new(request, slug: str):
    community = _community(request, slug)
    form = SurveyForm(request.POST or None, initial={"anonymous": True})
    if request.method == "POST" and form.is_valid():
        try:
            created = services.create_survey(actor=request.user, community=community, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The survey was created; now add its questions."))
            return redirect("cocreation:survey_manage", slug, created.pk)
    return render(request, "cocreation/form.html", {"community": community, "form": form, "title": _("New survey"),
                                                     "back": ("cocreation:surveys", [slug])})


def _answers_from_post(post, questions) -> dict:
    answers = {}
    for q in questions:
        key = f"q{q.pk}"
        answers[str(q.pk)] = post.getlist(key) if q.kind == QuestionKind.MULTIPLE else post.get(key, "")
    return answers


def _answer_page(request, survey, *, token=None, invitation=None):
    questions = selectors.questions(survey)
    state = services.survey_state(survey)
    errors, values = {}, {}
    answered = invitation.used_at is not None if invitation else selectors.has_answered(request.user, survey)
    if request.method == "POST":
        values = _answers_from_post(request.POST, questions)
        try:
            services.submit_response(survey=survey, answers=values, actor=request.user, token=token)
        except DomainError as error:
            if isinstance(error, NotFound):
                raise Http404(error.message) from error
            errors = {k.split(".", 1)[1]: v for k, v in error.field_errors.items() if "." in k}
            messages.error(request, _(error.message))
        else:
            messages.success(request, _("Thank you — your answers were saved."))
            answered = True
            values = {}
    may_results = selectors.may_see_results(request.user, survey, answered_by_token=bool(invitation and answered))
    results_ctx = _results_context(survey) if (may_results and token and answered) else {}
    return render(request, "cocreation/survey.html", {
        "community": survey.community, "survey": survey, "questions": questions, "state": state, "answered": answered,
        "errors": errors, "values": values, "token": token, "may_results": may_results and not token,
        "may_manage": permissions.is_manager(request.user, survey.community), **results_ctx,
    }, status=422 if errors else 200)


@login_required
def survey(request, slug: str, survey_id: int):
    community = _community(request, slug)
    return _answer_page(request, selectors.survey(community, survey_id))


def survey_by_token(request, token: str):
    try:
        the_survey, invitation = selectors.survey_by_token(token)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return _answer_page(request, the_survey, token=token, invitation=invitation)


@login_required
def survey_manage(request, slug: str, survey_id: int):
    community = _community(request, slug)
    the_survey = selectors.survey(community, survey_id)
    if not permissions.is_manager(request.user, community):
        raise Http404(_("No such page."))
    form = QuestionForm(request.POST if request.POST.get("op") == "question" else None)
    created_tokens = []
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "question" and form.is_valid():
                data = form.cleaned_data
                services.add_question(actor=request.user, survey=the_survey, kind=data["kind"], prompt=data["prompt"],
                                      required=data["required"], choices=data["choices"].splitlines())
                messages.success(request, _("The question was added."))
                return redirect("cocreation:survey_manage", slug, survey_id)
            if op == "close":
                services.close_survey(actor=request.user, survey=the_survey)
                messages.success(request, _("The survey is closed."))
                return redirect("cocreation:survey_manage", slug, survey_id)
            if op == "visibility":
                services.set_results_visibility(actor=request.user, survey=the_survey, visible=request.POST.get("visible") == "1")
                messages.success(request, _("Saved."))
                return redirect("cocreation:survey_manage", slug, survey_id)
            if op == "invitations":
                try:
                    count = int(request.POST.get("count", "0"))
                except ValueError:
                    count = 0
                created_tokens = services.create_survey_invitations(actor=request.user, survey=the_survey, count=count,
                                                                    label=request.POST.get("label", ""))
        except DomainError as error:
            if op == "question":
                add_domain_error(form, error)
            else:
                _refuse(request, error)
        the_survey.refresh_from_db()
    return render(request, "cocreation/survey_manage.html", {
        "community": community, "survey": the_survey, "questions": selectors.questions(the_survey), "form": form,
        "state": services.survey_state(the_survey), "created_tokens": created_tokens,
        "responses": the_survey.responses.count(),
    })


def _results_context(survey, row=None, column=None) -> dict:
    total, rows = selectors.results(survey)
    blocks = []
    for r in rows:
        chart = ""
        if r.options:
            chart = charts.bar_chart(title=r.question.prompt, labels=[o.label for o in r.options], counts=[o.count for o in r.options])
        interval = ""
        if r.summary and r.summary.mean is not None:
            lo, hi = (1, 5) if r.question.kind == QuestionKind.LIKERT else (min(r.summary.minimum, r.summary.ci_low or r.summary.minimum),
                                                                            max(r.summary.maximum, r.summary.ci_high or r.summary.maximum))
            interval = charts.interval_chart(title=_("Mean and the 95 percent confidence interval"), mean=r.summary.mean,
                                             low=r.summary.ci_low, high=r.summary.ci_high, scale_min=lo, scale_max=hi)
        blocks.append({"result": r, "chart": chart, "interval": interval})
    eligible = [r.question for r in rows if r.question.kind in selectors.CROSSTAB_KINDS]
    return {"total": total, "blocks": blocks, "eligible": eligible}


@login_required
def survey_results(request, slug: str, survey_id: int):
    community = _community(request, slug)
    the_survey = selectors.survey(community, survey_id)
    try:
        selectors.require_results(request.user, the_survey)
    except DomainError as error:
        _refuse(request, error)
        return redirect("cocreation:survey", slug, survey_id)
    ctx = _results_context(the_survey)
    tab, tab_error = None, None
    if request.GET.get("row") and request.GET.get("column"):
        try:
            tab = selectors.crosstab(the_survey, int(request.GET["row"]), int(request.GET["column"]))
        except (DomainError, ValueError) as exc:
            tab_error = getattr(exc, "message", _("Choose two questions."))
    return render(request, "cocreation/results.html", {
        "community": community, "survey": the_survey, "tab": tab, "tab_error": tab_error,
        "row": request.GET.get("row", ""), "column": request.GET.get("column", ""), **ctx,
    })


@login_required
def survey_csv(request, slug: str, survey_id: int):
    community = _community(request, slug)
    the_survey = selectors.survey(community, survey_id)
    try:
        selectors.require_results(request.user, the_survey)
    except DomainError as error:
        _refuse(request, error)
        return redirect("cocreation:survey", slug, survey_id)
    response = HttpResponse(selectors.results_csv(the_survey), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="survey-{the_survey.pk}.csv"'
    return response


# --- workspaces -------------------------------------------------------------------------------


def _workspace(request, slug: str, workspace_id: int, action: str = "view"):
    try:
        return selectors.workspace_by_slug(request.user, slug, workspace_id, action)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def workspaces(request, slug: str):
    community = _community(request, slug)
    return render(request, "cocreation/workspaces.html", {
        "community": community, "workspaces": selectors.workspaces(request.user, community),
        "may_manage": permissions.is_manager(request.user, community),
    })


@login_required
def workspace_new(request, slug: str):
    community = _community(request, slug)
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.create_workspace(actor=request.user, community=community, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            return redirect("cocreation:workspace", slug, created.pk)
    return render(request, "cocreation/form.html", {"community": community, "form": form, "title": _("New workspace"),
                                                     "back": ("cocreation:workspaces", [slug])})


@login_required
def workspace(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id, "view_call")
    inside = permissions.can_workspace(request.user, "view", ws)
    ctx = {
        "community": ws.community, "workspace": ws, "inside": inside,
        "role": permissions.workspace_role(request.user, ws),
        "may_apply": permissions.can_workspace(request.user, "apply", ws),
        "my_application": selectors.my_application(request.user, ws),
        "apply_form": forms.Form(),
    }
    if inside:
        ctx.update({
            "documents": selectors.documents(ws), "milestones": selectors.milestones(ws), "threads": selectors.threads(ws),
            "activity": selectors.activity(ws, 20), "collaborators": selectors.collaborators(ws),
            "may_manage": permissions.can_workspace(request.user, "manage", ws),
            "may_create_document": permissions.can_workspace(request.user, "create_document", ws),
            "may_milestones": permissions.can_workspace(request.user, "manage_milestones", ws),
            "may_thread": permissions.can_workspace(request.user, "start_thread", ws),
            "calendar_url": request.build_absolute_uri(reverse("cocreation:calendar", args=[ws.pk, ws.calendar_token])),
            "milestone_form": MilestoneForm(),
        })
        if ctx["may_manage"]:
            ctx["applications"] = selectors.applications(ws)
    return render(request, "cocreation/workspace.html", ctx)


@login_required
@require_POST
def workspace_apply(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id, "view_call")
    try:
        services.apply_to_workspace(actor=request.user, workspace=ws, motivation=request.POST.get("motivation", ""))
    except DomainError as error:
        messages.error(request, " ".join([_(error.message)] + [_(m) for ms in error.field_errors.values() for m in ms]))
    else:
        messages.success(request, _("Your application was sent."))
    return redirect("cocreation:workspace", slug, workspace_id)


@login_required
@require_POST
def workspace_manage(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id, "view_call")
    op = request.POST.get("op")
    try:
        if op == "decide":
            application = selectors.application(ws, int(request.POST.get("application", "0")))
            services.decide_application(actor=request.user, application=application, accept=request.POST.get("accept") == "1")
        elif op == "expert":
            services.add_collaborator(actor=request.user, workspace=ws, email=request.POST.get("email", ""),
                                      role=request.POST.get("role", CollaboratorRole.EXPERT))
        elif op == "status":
            services.set_workspace_status(actor=request.user, workspace=ws, status=request.POST.get("status", ""))
        elif op == "revoke_calendar":
            services.revoke_calendar_token(actor=request.user, workspace=ws)
        else:
            raise Http404(_("No such action."))
    except DomainError as error:
        messages.error(request, " ".join([_(error.message)] + [_(m) for ms in error.field_errors.values() for m in ms]))
    except ValueError:
        messages.error(request, _("No such application."))
    else:
        messages.success(request, _("Saved."))
    return redirect("cocreation:workspace", slug, workspace_id)


@login_required
def workspace_activity(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id)
    template = "cocreation/_activity.html" if request.htmx else "cocreation/activity.html"
    return render(request, template, {"community": ws.community, "workspace": ws, "activity": selectors.activity(ws, 100)})


@login_required
def document_new(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id)
    form = DocumentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.create_document(actor=request.user, workspace=ws, title=form.cleaned_data["title"],
                                               body=form.cleaned_data["body"])
        except DomainError as error:
            if not error.field_errors:
                _refuse(request, error)
            add_domain_error(form, error)
        else:
            return redirect("cocreation:document", slug, workspace_id, created.pk)
    return render(request, "cocreation/form.html", {"community": ws.community, "form": form, "title": _("New document"),
                                                     "back": ("cocreation:workspace", [slug, workspace_id])})


@login_required
def document(request, slug: str, workspace_id: int, document_id: int):
    ws = _workspace(request, slug, workspace_id)
    doc = selectors.document(ws, document_id)
    conflict = None
    form = DocumentForm(initial={"title": doc.title, "body": doc.body, "base_version": doc.version})
    status = 200
    if request.method == "POST":
        form = DocumentForm(request.POST)
        if form.is_valid():
            try:
                services.save_document(actor=request.user, document=doc, title=form.cleaned_data["title"],
                                       body=form.cleaned_data["body"], base_version=form.cleaned_data["base_version"])
            except services.DocumentConflict as error:
                # Keep what this person typed in the editor, now based on the newest version,
                # and show the other text beside it: they merge by hand and save again.
                conflict = error
                doc = error.current
                form = DocumentForm(initial={"title": error.yours_title, "body": error.yours_body, "base_version": doc.version})
                status = 409
            except DomainError as error:
                add_domain_error(form, error)
                status = 422
            else:
                messages.success(request, _("Saved as a new version."))
                return redirect("cocreation:document", slug, workspace_id, document_id)
        else:
            status = 422
    return render(request, "cocreation/document.html", {
        "community": ws.community, "workspace": ws, "document": doc, "form": form, "conflict": conflict,
        "editing": request.method == "POST" or request.GET.get("edit") == "1",
    }, status=status)


@login_required
def document_history(request, slug: str, workspace_id: int, document_id: int):
    ws = _workspace(request, slug, workspace_id)
    doc = selectors.document(ws, document_id)
    versions = list(selectors.versions(doc))
    lines, error = None, None
    old, new = request.GET.get("from"), request.GET.get("to")
    if old and new:
        try:
            lines = selectors.diff(doc, int(old), int(new))
        except (DomainError, ValueError) as exc:
            error = getattr(exc, "message", _("Choose two versions."))
    return render(request, "cocreation/history.html", {
        "community": ws.community, "workspace": ws, "document": doc, "versions": versions, "lines": lines,
        "error": error, "old": old or "", "new": new or "",
    })


@login_required
@require_POST
def milestones(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id)
    try:
        if request.POST.get("op") == "toggle":
            ms = selectors.milestone(ws, int(request.POST.get("milestone", "0")))
            services.update_milestone(actor=request.user, milestone=ms, done=not ms.done)
        else:
            form = MilestoneForm(request.POST)
            if not form.is_valid():
                for field, errs in form.errors.items():
                    messages.error(request, f"{form.fields[field].label if field in form.fields else ''}: {' '.join(errs)}")
                return redirect("cocreation:workspace", slug, workspace_id)
            services.add_milestone(actor=request.user, workspace=ws, **form.cleaned_data)
    except DomainError as error:
        messages.error(request, " ".join([_(error.message)] + [_(m) for ms in error.field_errors.values() for m in ms]))
    except ValueError:
        messages.error(request, _("No such milestone."))
    else:
        messages.success(request, _("Saved."))
    return redirect(f"{services.workspace_url(ws)}#milestones")


@login_required
def thread_new(request, slug: str, workspace_id: int):
    ws = _workspace(request, slug, workspace_id)
    form = ThreadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.start_thread(actor=request.user, workspace=ws, **form.cleaned_data)
        except DomainError as error:
            if not error.field_errors:
                _refuse(request, error)
            add_domain_error(form, error)
        else:
            return redirect("cocreation:thread", slug, workspace_id, created.pk)
    return render(request, "cocreation/form.html", {"community": ws.community, "form": form, "title": _("New discussion"),
                                                     "back": ("cocreation:workspace", [slug, workspace_id])})


@login_required
def thread(request, slug: str, workspace_id: int, thread_id: int):
    ws = _workspace(request, slug, workspace_id)
    the_thread = selectors.thread(ws, thread_id)
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.post_in_thread(actor=request.user, thread=the_thread, body=form.cleaned_data["body"])
        except DomainError as error:
            add_domain_error(form, error)
        else:
            return redirect("cocreation:thread", slug, workspace_id, thread_id)
    return render(request, "cocreation/thread.html", {"community": ws.community, "workspace": ws, "thread": the_thread,
                                                       "posts": selectors.posts(the_thread), "form": form})


def calendar(request, workspace_id: int, token: str):
    """The private feed: anyone holding the URL may read it (calendar clients cannot log in)."""
    try:
        ws = selectors.workspace_by_calendar_token(workspace_id, token)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return feeds.calendar_response(
        request, milestone_items(selectors.milestones(ws)), filename=f"workspace-{ws.pk}.ics", name=ws.title,
        time_zone=ws.community.time_zone,
        source_url=request.build_absolute_uri(reverse("cocreation:calendar", args=[ws.pk, token])),
    )


def milestone_items(milestones) -> list[feeds.CalendarItem]:
    """Milestones as all-day items from the start to the due day; done ones carry a check mark and
    do not block time (TRANSP:TRANSPARENT)."""
    return [
        feeds.CalendarItem(
            uid=feeds.uid_for("milestone", m.pk), summary=m.title + (" ✓" if m.done else ""),
            start=m.starts_on, end=m.due_on + timedelta(days=1), description=m.description,
            updated=m.updated_at, created=m.created_at, sequence=m.sequence, transparent=True,
        )
        for m in milestones
    ]


__all__ = ["Workspace"]
