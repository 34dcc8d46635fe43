"""Shop pages (preview card, guest order, order desk) and the designer's periodic reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from pumasi.market import services
from pumasi.market.models import Order, ReportRun
from pumasi.platform.models import Event
from pumasi.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(user):
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_product_page_has_preview_card_and_guest_can_order(shop):
    client = Client()
    url = f"/c/{shop.community.slug}/shop/{shop.product.pk}/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<meta property="og:title" content="Hanok tee">' in html
    assert 'name="twitter:card"' in html
    response = client.post(url + "order/", {
        "shipping_address": "3 Guest lane, Incheon", "guest_name": "Guest", "guest_email": "g@example.org",
        f"qty_{shop.variants['S'].pk}": "2"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/shop/orders/{order.access_token}/"
    assert "PM" in client.get(response["Location"]).content.decode()


def test_order_form_errors_shown_and_nothing_written(shop):
    response = Client().post(f"/c/{shop.community.slug}/shop/{shop.product.pk}/order/", {
        "shipping_address": "3 Guest lane, Incheon", "guest_name": "", "guest_email": "",
        f"qty_{shop.variants['S'].pk}": "50"})
    assert response.status_code == 422
    assert not Order.objects.exists()


def test_order_desk_confirms_and_ships(shop):
    order = services.place_order(actor=shop.buyer, product=shop.product, shipping_address="1 Road, Seoul",
                                 lines=[{"variant_id": shop.variants["M"].pk, "quantity": 1}])
    desk = login(shop.organiser)
    base = f"/c/{shop.community.slug}/shop/orders/"
    assert desk.get(base).status_code == 200
    desk.post(base + f"{order.number}/confirm/", {"amount_received": "20000"})
    desk.post(base + f"{order.number}/ship/", {"carrier": "CJ", "tracking_number": "TRK-0001"})
    order.refresh_from_db()
    assert order.status == "shipped" and order.tracking_number == "TRK-0001"
    assert login(shop.buyer).get(base).status_code == 403


def test_daily_report_once_per_period_in_app_and_by_mail(shop, django_capture_on_commit_callbacks):
    order = services.place_order(actor=shop.buyer, product=shop.product, shipping_address="1 Road, Seoul",
                                 lines=[{"variant_id": shop.variants["M"].pk, "quantity": 2}])
    services.confirm_payment(actor=shop.organiser, order=order, amount_received=40000)
    tomorrow = timezone.now() + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_reports(period="daily", now=tomorrow) == 1
    assert services.send_reports(period="daily", now=tomorrow) == 0
    run = ReportRun.objects.get()
    assert run.designer == shop.designer
    product = run.content["products"][0]
    assert product["units"] == 2 and product["revenue"] == 40000
    assert {v["label"]: v["stock"] for v in product["variants"]} == {"S": 10, "M": 8, "L": 10}
    assert {v["label"]: v["sold_in_period"] for v in product["variants"]}["M"] == 2
    [event] = Event.objects.filter(name="market.report", recipient=shop.designer)
    assert "2" in event.payload["title"]
    assert any(shop.designer.email in m.to for m in mail.outbox)
    page = login(shop.designer).get(f"/c/{shop.community.slug}/shop/reports/{run.pk}/")
    assert page.status_code == 200
    assert login(shop.buyer).get(f"/c/{shop.community.slug}/shop/reports/{run.pk}/").status_code == 404


def test_weekly_and_monthly_periods(shop):
    from pumasi.market.selectors import last_complete_period

    now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    start, end = last_complete_period("weekly", now, "Asia/Seoul")
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-02-23", "2026-03-02")
    start, end = last_complete_period("monthly", now, "Asia/Seoul")
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-02-01", "2026-03-01")
    start, end = last_complete_period("daily", now, "Asia/Seoul")
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-03-03", "2026-03-04")
