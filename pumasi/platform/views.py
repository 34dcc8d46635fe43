"""Token pages: create (secret shown once), list, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.core.errors import DomainError
from pumasi.core.forms import add_domain_error
from pumasi.platform import selectors, services
from pumasi.platform.services import record_audit


class TokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), widget=forms.CheckboxSelectMultiple,
        choices=[(k, format_lazy("{} — {}", k, gettext_lazy(v))) for k, v in services.TOKEN_SCOPES.items()],
    )
    expires_at = forms.DateTimeField(label=gettext_lazy("Expires"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, secret = services.create_api_token(user=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            form = TokenForm()
    return render(request, "platform/tokens.html", {"form": form, "secret": secret, "tokens": selectors.tokens_of(request.user)})


@login_required
@require_POST
def revoke_token(request, token_id: int):
    try:
        services.revoke_api_token(user=request.user, token_id=token_id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The token was revoked."))
    return redirect("platform:tokens")


# --- OpenID Connect: consent screen, discovery at the site root --------------------------------

from urllib.parse import urlencode  # noqa: E402

from oauth2_provider.http import OAuth2ResponseRedirect  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402
from oauth2_provider.views import AuthorizationView, ConnectDiscoveryInfoView  # noqa: E402

from pumasi.communities.permissions import role_of  # noqa: E402
from pumasi.platform import oidc  # noqa: E402


class ConsentView(AuthorizationView):
    """The consent screen. Only members of the community that registered the client may sign in to
    it; scopes beyond the person's role there are left out of what is granted."""

    template_name = "platform/oidc_consent.html"

    def _refuse(self, redirect_uri: str, state: str | None, application):
        separator = "&" if "?" in redirect_uri else "?"
        query = {"error": "access_denied", "error_description": "You are not a member of this community."}
        if state:
            query["state"] = state
        return OAuth2ResponseRedirect(redirect_uri + separator + urlencode(query), application.get_allowed_schemes())

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        context = getattr(response, "context_data", None) or {}
        application = context.get("application")
        if application is None or context.get("error"):
            return response
        client = oidc.client_of(application)
        role = role_of(request.user, client.community) if client else None
        if role is None:
            return self._refuse(context["redirect_uri"], context.get("state"), application)
        granted = oidc.scopes_within_role(context.get("scopes", []), role)
        response.context_data.update(
            client=client, community=client.community, role=role,
            granted=[(s, oidc.all_scopes()[s]) for s in granted],
            withheld=[(s, oidc.all_scopes()[s]) for s in context.get("scopes", []) if s not in granted],
        )
        return response

    def form_valid(self, form):
        application = get_application_model().objects.filter(client_id=form.cleaned_data.get("client_id")).first()
        client = oidc.client_of(application)
        role = role_of(self.request.user, client.community) if client else None
        if client is None or role is None:
            if application is None:
                return self.form_invalid(form)
            return self._refuse(form.cleaned_data["redirect_uri"], form.cleaned_data.get("state"), application)
        granted = oidc.scopes_within_role((form.cleaned_data.get("scope") or "").split(), role)
        if "openid" not in granted:
            granted.insert(0, "openid")
        form.cleaned_data["scope"] = " ".join(granted)
        if form.cleaned_data.get("allow"):
            record_audit(actor=self.request.user, action="oidc.consented", obj=client, community=client.community,
                         changes={"scopes": granted})
        return super().form_valid(form)


def discovery(request):
    """The discovery document at the site root too, for clients that look there."""
    return ConnectDiscoveryInfoView.as_view()(request)


# --- Notifications, unsubscribe, Atom, PWA, organiser pages -------------------------------------

from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from pumasi.communities.selectors import community_for  # noqa: E402
from pumasi.platform import feeds, notifications, webhooks  # noqa: E402
from pumasi.platform.models import CommunityPolicy, NotificationPreference  # noqa: E402


@login_required
def notification_list(request):
    if request.method == "POST":
        notifications.mark_read(user=request.user)
        messages.success(request, _("All notifications are marked read."))
        return redirect("platform:notifications")
    items = list(notifications.notifications_of(request.user)[:100])
    kinds = sorted({n.kind for n in items} | set(notifications.preferences_of(request.user)))
    prefs = notifications.preferences_of(request.user)
    push = notifications.push_preferences_of(request.user)
    return render(request, "platform/notifications.html", {
        "items": items, "unread": notifications.unread_count(request.user),
        "kinds": [(k, prefs.get(k, notifications.DEFAULT_EMAIL), push.get(k, notifications.DEFAULT_PUSH)) for k in kinds],
        "choices": NotificationPreference.Email.choices,
        "push_key": webpush.vapid_public_key(), "push_devices": list(webpush.subscriptions_of(request.user)[:50]),
    })


@login_required
@require_POST
def notification_preference(request):
    # The page's form always says whether push is ticked; other posters may leave push alone.
    push = request.POST.get("push") == "on" if "has_push" in request.POST else None
    try:
        notifications.set_preference(user=request.user, kind=request.POST.get("kind", ""),
                                     email=request.POST.get("email", ""), push=push)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Your choice was saved."))
    return redirect("platform:notifications")


@csrf_exempt  # the signed token is the credential; mail clients post one-click unsubscribes (RFC 8058)
def unsubscribe(request, token: str):
    user, kind = notifications.read_unsubscribe_token(token)
    done = False
    if request.method == "POST":
        notifications.unsubscribe(token)
        done = True
    return render(request, "platform/unsubscribe.html", {"person": user, "kind": kind, "done": done})


def community_atom(request, slug: str):
    community = feeds.public_community(slug)
    body = feeds.atom_feed(community, base_url=request.build_absolute_uri("/").rstrip("/"))
    return HttpResponse(body, content_type="application/atom+xml; charset=utf-8")


def web_manifest(request):
    return JsonResponse(feeds.manifest(), content_type="application/manifest+json",
                        json_dumps_params={"ensure_ascii": False})


def service_worker(request):
    """platform/static/platform/sw.js at the site root, so its scope is the whole site."""
    response = HttpResponse(_service_worker_source(), content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


def offline(request):
    return render(request, "platform/offline.html")


class ClientForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Application name"), max_length=100)
    redirect_uris = forms.CharField(label=gettext_lazy("Redirect URIs (one per line)"), widget=forms.Textarea(attrs={"rows": 3}))
    scopes = forms.MultipleChoiceField(label=gettext_lazy("Scopes it may ask for"), widget=forms.CheckboxSelectMultiple,
                                       choices=[], initial=oidc.DEFAULT_CLIENT_SCOPES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(k, f"{k} — {v}") for k, v in oidc.all_scopes().items()]


class GrantForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Member's e-mail address"))
    scope = forms.CharField(label=gettext_lazy("Right (e.g. production:product:12)"), max_length=120)
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)


class WebhookForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("Receiver URL"), max_length=500, assume_scheme="https")
    event_types = forms.CharField(label=gettext_lazy("Event types (comma separated, * for all)"), initial="*")
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)


@login_required
def community_platform(request, slug: str):
    """Organisers' page: client applications, scoped grants, webhooks, inbound endpoints, 2FA policy."""
    community = community_for(request.user, slug, "edit")
    client_form, grant_form, webhook_form = ClientForm(prefix="c"), GrantForm(prefix="g"), WebhookForm(prefix="w")
    shown_secret = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "client":
                client_form = ClientForm(request.POST, prefix="c")
                if client_form.is_valid():
                    client, secret = oidc.register_client(
                        actor=request.user, community=community, name=client_form.cleaned_data["name"],
                        redirect_uris=client_form.cleaned_data["redirect_uris"].split(),
                        scopes=client_form.cleaned_data["scopes"])
                    shown_secret = {"label": _("Client secret of %(name)s") % {"name": client.name},
                                    "id": client.client_id, "secret": secret}
                    client_form = ClientForm(prefix="c")
            elif action == "disable_client":
                oidc.disable_client(actor=request.user, community=community, client_pk=int(request.POST["id"]))
            elif action == "grant":
                grant_form = GrantForm(request.POST, prefix="g")
                if grant_form.is_valid():
                    from django.contrib.auth import get_user_model

                    person = get_user_model().objects.filter(email__iexact=grant_form.cleaned_data["email"]).first()
                    if person is None:
                        grant_form.add_error("email", _("No member has this address."))
                    else:
                        oidc.grant_scope(actor=request.user, community=community, user=person,
                                         scope=grant_form.cleaned_data["scope"], note=grant_form.cleaned_data["note"])
                        grant_form = GrantForm(prefix="g")
            elif action == "revoke_grant":
                oidc.revoke_grant(actor=request.user, community=community, grant_id=int(request.POST["id"]))
            elif action == "webhook":
                webhook_form = WebhookForm(request.POST, prefix="w")
                if webhook_form.is_valid():
                    types = [t.strip() for t in webhook_form.cleaned_data["event_types"].split(",") if t.strip()]
                    subscription = webhooks.create_subscription(
                        actor=request.user, community=community, url=webhook_form.cleaned_data["url"],
                        event_types=types, description=webhook_form.cleaned_data["description"])
                    shown_secret = {"label": _("Signing secret of %(url)s") % {"url": subscription.url},
                                    "id": subscription.pk, "secret": subscription.secret}
                    webhook_form = WebhookForm(prefix="w")
            elif action in {"enable_webhook", "disable_webhook"}:
                webhooks.set_subscription_enabled(actor=request.user, community=community,
                                                  subscription_id=int(request.POST["id"]),
                                                  enabled=action == "enable_webhook")
            elif action == "replay":
                webhooks.replay_delivery(actor=request.user, community=community, delivery_id=int(request.POST["id"]))
                messages.success(request, _("The delivery is being sent again."))
            elif action == "inbound":
                endpoint = webhooks.create_inbound_endpoint(actor=request.user, community=community,
                                                            name=request.POST.get("name", ""))
                shown_secret = {"label": _("Secret of endpoint %(name)s") % {"name": endpoint.name},
                                "id": f"/api/v1/hooks/in/{endpoint.pk}", "secret": endpoint.secret}
            elif action == "policy":
                from pumasi.platform.services import set_community_policy

                set_community_policy(actor=request.user, community=community,
                                     organisers_need_mfa=request.POST.get("organisers_need_mfa") == "on")
                messages.success(request, _("The security policy was saved."))
        except (DomainError, ValueError, KeyError) as error:
            form = {"client": client_form, "grant": grant_form, "webhook": webhook_form}.get(action)
            if form is not None and isinstance(error, DomainError):
                add_domain_error(form, error)
            else:
                messages.error(request, getattr(error, "message", _("That did not work.")))
        if shown_secret is None and not any(f.errors for f in (client_form, grant_form, webhook_form)):
            return redirect("platform:community_platform", slug=slug)
    subscriptions = list(webhooks.subscriptions_of(community))
    for subscription in subscriptions:
        subscription.recent = list(webhooks.deliveries_of(subscription)[:10])
    policy = CommunityPolicy.objects.filter(community=community).first()
    return render(request, "platform/community_platform.html", {
        "community": community, "clients": oidc.clients_of_community(community).select_related("application"),
        "grants": oidc.grants_of_community(community)[:200], "subscriptions": subscriptions,
        "endpoints": webhooks.inbound_endpoints_of(community), "client_form": client_form, "grant_form": grant_form,
        "webhook_form": webhook_form, "shown_secret": shown_secret,
        "policy": policy, "inbound_types": webhooks.inbound_types(),
    })


# --- A person's calendar feed of their bookings ---------------------------------------------------

from django.http import Http404  # noqa: E402
from django.views.decorators.cache import never_cache  # noqa: E402

from pumasi.core.errors import NotFound  # noqa: E402
from pumasi.platform import calendars  # noqa: E402


@login_required
@never_cache  # the page shows a secret URL
def my_calendar(request):
    """Show, copy, rotate or turn off the private URL of the person's bookings calendar."""
    if request.method == "POST":
        if request.POST.get("op") == "off":
            calendars.turn_off_calendar_feed(actor=request.user)
            messages.success(request, _("The calendar link is turned off; calendars using it stop updating."))
        else:
            rotated = calendars.feed_of(request.user) is not None
            calendars.rotate_calendar_feed(actor=request.user)
            messages.success(request, _("A new calendar link was made; the old one no longer works.") if rotated
                             else _("Your calendar link is ready. Add it to your calendar app."))
        return redirect("platform:my_calendar")
    feed = calendars.feed_of(request.user)
    return render(request, "platform/calendar.html", {
        "feed": feed, "url": request.build_absolute_uri(calendars.feed_path(feed)) if feed else None,
        "past_days": calendars.PAST_DAYS,
    })


def calendar_feed(request, token: str):
    """The feed itself: calendar clients cannot sign in, so the token in the URL is the credential.
    A wrong, rotated or turned-off token is an ordinary 404 that says nothing more."""
    try:
        person = calendars.person_by_token(token)
    except NotFound:
        raise Http404(_("No such calendar.")) from None
    base_url = request.build_absolute_uri("/").rstrip("/")
    return feeds.calendar_response(request, calendars.booking_items(person, base_url=base_url),
                                   filename="pumasi-bookings.ics", name=calendars.feed_name(person),
                                   source_url=request.build_absolute_uri(request.path))


# --- Web Push: the service worker's source, turning push on and off for this browser ------------

import json  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

from django.templatetags.static import static  # noqa: E402

from pumasi.core.api import problem_response  # noqa: E402
from pumasi.platform import webpush  # noqa: E402


@lru_cache(maxsize=1)
def _service_worker_source() -> str:
    source = (Path(__file__).parent / "static" / "platform" / "sw.js").read_text()
    return f"self.PUMASI_ICON = {json.dumps(static('platform/icon-192.png'))};\n{source}"


def _posted(request) -> dict:
    """The page's script posts JSON (PushSubscription.toJSON()); plain forms post fields."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {**request.POST.dict(), "keys": {"p256dh": request.POST.get("p256dh"), "auth": request.POST.get("auth")}}


@login_required
@require_POST
def push_subscribe(request):
    data = _posted(request)
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    try:
        subscription = webpush.subscribe(
            user=request.user, endpoint=data.get("endpoint"), p256dh=keys.get("p256dh"), auth=keys.get("auth"),
            expiration_time=data.get("expirationTime"),
            label=webpush.device_label(request.headers.get("User-Agent", "")))
    except DomainError as error:
        return problem_response(error.status, error.message, code=error.code, errors=error.field_errors or None)
    return JsonResponse({"id": subscription.pk, "message": _("Push notifications are on for this device.")},
                        status=201)


@login_required
@require_POST
def push_unsubscribe(request):
    """From the page's script (JSON with the endpoint) or the device list (a form with the id)."""
    data = _posted(request)
    scripted = request.content_type == "application/json"
    try:
        raw_id = data.get("id")
        webpush.unsubscribe(user=request.user, endpoint=data.get("endpoint") or None,
                            subscription_id=int(raw_id) if raw_id not in (None, "") else None)
    except (DomainError, ValueError, TypeError) as error:
        if isinstance(error, DomainError):
            status, message, code = error.status, error.message, error.code
        else:
            status, message, code = 422, _("That did not work."), "invalid_input"
        if scripted:
            return problem_response(status, message, code=code)
        messages.error(request, message)
    else:
        if scripted:
            return JsonResponse({"message": _("Push notifications are off for this device.")})
        messages.success(request, _("That device no longer gets push notifications."))
    return redirect("platform:notifications")
