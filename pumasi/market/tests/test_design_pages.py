"""The pages built for the browser walk of the 17 steps, without a browser: opening a call, closing
its phases, choosing a design, refusals shown beside their field, the statements page, and personal
messages landing on the person's notifications page."""

from __future__ import annotations

import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from pumasi.cocreation import services_design
from pumasi.cocreation.models import DesignCall
from pumasi.market.models import Product
from pumasi.platform.models import AuditEntry, Notification, ScopedGrant

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def picture() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 10)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "d.png"
    return buffer


@pytest.fixture
def call(community):
    now = timezone.now()
    return services_design.open_call(actor=community.organiser, community=community, title="Tee call", brief="Draw it",
                                     submissions_close_at=now + timedelta(hours=1),
                                     scoring_closes_at=now + timedelta(hours=2), royalty_bp=2000)


def test_organiser_opens_a_call_and_bad_times_are_refused_beside_the_field(community):
    client = signed_in(community.organiser)
    url = f"/c/{community.slug}/design-calls/new/"
    assert client.get(url).status_code == 200
    form = {"title": "Spring", "brief": "Alleys", "submissions_close_at": "2099-05-01T18:00",
            "scoring_closes_at": "2099-04-30T18:00", "royalty_percent": "12.5", "terms": ""}
    refused = client.post(url, form)
    assert refused.status_code == 422 and not DesignCall.objects.exists()
    assert refused.context["form"].errors["scoring_closes_at"]
    assert 'aria-invalid="true"' in refused.content.decode()
    form["scoring_closes_at"] = "2099-05-03T18:00"
    done = client.post(url, form)
    created = DesignCall.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/c/{community.slug}/design-calls/{created.pk}/"
    assert created.royalty_bp == 1250 and created.public is False  # an unticked box is a "no"
    # typed in the community's time zone, stored in UTC
    assert timezone.localtime(created.submissions_close_at, ZoneInfo(community.time_zone)).hour == 18


def test_members_cannot_open_calls_or_close_phases(community, member_of, call):
    member = signed_in(member_of(community))
    assert member.get(f"/c/{community.slug}/design-calls/new/").status_code == 404
    member.post(f"/c/{community.slug}/design-calls/{call.pk}/close/")
    call.refresh_from_db()
    assert call.submissions_close_at > timezone.now()


def test_closing_phases_early_then_choosing_with_refusals_beside_fields(community, member_of, call):
    designer = member_of(community, display_name="Designer")
    design = services_design.submit_design(actor=designer, call=call, title="Cat", variants=["S", "M"], image=picture())
    organiser = signed_in(community.organiser)
    close = f"/c/{community.slug}/design-calls/{call.pk}/close/"
    organiser.post(close)
    call.refresh_from_db()
    assert call.submissions_close_at <= timezone.now() < call.scoring_closes_at
    organiser.post(close)
    call.refresh_from_db()
    assert call.scoring_closes_at <= timezone.now()
    assert organiser.post(close).status_code == 302  # nothing left to close: refused with a message
    assert AuditEntry.objects.filter(action="design.phase_closed").count() == 2
    page = organiser.get(f"/c/{community.slug}/design-calls/{call.pk}/").content.decode()
    assert f'name="d{design.pk}-unit_cost"' in page
    select = f"/c/{community.slug}/design-calls/{call.pk}/designs/{design.pk}/select/"
    prefix = f"d{design.pk}-"
    bad = organiser.post(select, {prefix + "unit_cost": "8000", prefix + "floor_price": "7000",
                                  prefix + "low_stock_threshold": "3", prefix + "community_fund_percent": "10"})
    assert bad.status_code == 422 and not Product.objects.exists()
    assert "8000" in " ".join(bad.context["designs"][0].select_form.errors["floor_price"])
    good = organiser.post(select, {prefix + "unit_cost": "8000", prefix + "floor_price": "15000",
                                   prefix + "low_stock_threshold": "3", prefix + "community_fund_percent": "10",
                                   prefix + "production_manager": str(community.organiser.pk)})
    product = Product.objects.get()
    assert good["Location"] == f"/c/{community.slug}/production/{product.pk}/"
    assert (product.unit_cost, product.floor_price, product.community_fund_bp, product.production_manager_id) == (
        8000, 15000, 1000, community.organiser.pk)
    assert ScopedGrant.objects.filter(user=designer, scope=product.grant_scope, revoked_at=None).exists()
    # the designer's message is on their notifications page, linking to the production page
    note = Notification.objects.get(recipient=designer, kind="cocreation.design_selected")
    assert note.url == f"/c/{community.slug}/production/{product.pk}/"
    assert "Cat" in signed_in(designer).get("/notifications/").content.decode()
    assert signed_in(designer).get(note.url).status_code == 200


def test_price_under_the_floor_is_shown_beside_the_field(shop):
    client = signed_in(shop.designer)
    response = client.post(f"/c/{shop.community.slug}/shop/{shop.product.pk}/price/", {"price": "100", "terms": "x"})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'aria-invalid="true"' in html and "15000" in html
    shop.product.refresh_from_db()
    assert (shop.product.price, shop.product.terms) == (20000, "Made in Seoul")


def test_statements_page_settles_for_organisers_only(shop):
    url = f"/c/{shop.community.slug}/shop/statements/"
    designer = signed_in(shop.designer)
    assert designer.get(url).status_code == 200
    assert b'name="period_start"' not in designer.get(url).content
    assert designer.post(url, {"period_start": "2020-01-01", "period_end": "2020-01-02"}).status_code == 403
    organiser = signed_in(shop.organiser)
    today = timezone.localdate()
    unfinished = organiser.post(url, {"period_start": str(today), "period_end": str(today + timedelta(days=1))})
    assert unfinished.status_code == 422 and unfinished.context["form"].errors["period_end"]
    assert Client().get(url).status_code == 302  # sign in first


def test_shop_messages_reach_the_notifications_page(shop):
    from pumasi.market import services

    order = services.place_order(actor=shop.buyer, product=shop.product, shipping_address="1 Road, Seoul",
                                 lines=[{"variant_id": shop.variants["M"].pk, "quantity": 1}])
    kinds = set(Notification.objects.filter(recipient=shop.designer).values_list("kind", flat=True))
    assert {"market.product_created", "market.product_listed", "market.order_placed"} <= kinds
    assert Notification.objects.filter(recipient=shop.buyer, kind="market.order_placed_buyer").count() == 1
    assert order.number in signed_in(shop.buyer).get("/notifications/").content.decode()
