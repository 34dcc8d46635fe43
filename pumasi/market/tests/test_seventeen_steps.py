"""Scenario 2 of the product brief, the 17 steps from a design call to the designer's payout and
the end of the sale, walked in order through the API (and the share pages), asserting at each
step who got which message, when access appears and disappears, and at the end that every ledger
balance equals the expected split to the won.

The scenario runs "yesterday" (time-machine) so that the last step can settle a finished period."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from PIL import Image

from pumasi.cocreation.models import DesignCall, ProductionOrder
from pumasi.ledger.models import AccountBalance, Statement
from pumasi.market import services as market
from pumasi.market.models import Order, Product, ReportRun, Variant
from pumasi.platform import webhooks
from pumasi.platform.models import Event, ScopedGrant

pytestmark = pytest.mark.django_db


def png(colour=(200, 30, 30)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "design.png"
    return buffer


def post(client, url, body=None, **extra):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **extra)


def got(user, name) -> list[Event]:
    return list(Event.objects.filter(recipient=user, name=name).order_by("pk"))


def balance(community, code) -> int:
    row = AccountBalance.objects.filter(account__community=community, account__code=code).first()
    return row.balance if row else 0


def signed(client, endpoint, event_type, data, message_id):
    body = json.dumps({"type": event_type, "data": data})
    stamp = int(time.time())
    return client.post(f"/api/v1/hooks/in/{endpoint.pk}", data=body, content_type="application/json",
                       HTTP_WEBHOOK_ID=message_id, HTTP_WEBHOOK_TIMESTAMP=str(stamp),
                       HTTP_WEBHOOK_SIGNATURE=webhooks.sign(endpoint.secret, message_id, stamp, body))


def test_seventeen_steps(community, member_of, api_client_for, make_user):
    from oauth2_provider.models import AccessToken

    from pumasi.platform.oidc import register_client

    community.kind = "company"
    community.save()
    slug = community.slug
    maker = community.organiser
    manager = member_of(community, "organiser", display_name="Production manager")
    designer = member_of(community, display_name="Designer One")
    rival = member_of(community, display_name="Designer Two")
    voters = [member_of(community) for _ in range(3)]
    buyer = member_of(community, display_name="Buyer")
    org_api = api_client_for(maker)
    designer_api = api_client_for(designer, scopes=["read", "cocreation:write", "market:write"])
    yesterday = timezone.now() - timedelta(days=1)
    day_start = timezone.localtime(yesterday).replace(hour=9, minute=0, second=0, microsecond=0)

    with time_machine.travel(day_start, tick=True):
        # 1. The company promotes the call: a share page with a preview card.
        response = post(org_api, f"/api/v1/cocreation/{slug}/design-calls", {
            "title": "Spring tee call", "brief": "Draw Seoul's alleys on a tee.", "royalty_bp": 2000,
            "submissions_close_at": (timezone.now() + timedelta(hours=1)).isoformat(),
            "scoring_closes_at": (timezone.now() + timedelta(hours=2)).isoformat(), "terms": "20 % of the margin"})
        assert response.status_code == 201, response.content
        call_id = response.json()["id"]
        share = Client().get(response.json()["share_url"])
        assert share.status_code == 200 and '<meta property="og:title" content="Spring tee call">' in share.content.decode()

        # 2. Members register designs (with their existing login) — images validated and re-encoded.
        url = f"/api/v1/cocreation/{slug}/design-calls/{call_id}/designs"
        bad = designer_api.post(url, {"title": "X", "variants": "S", "image": io.BytesIO(b"not an image")})
        assert bad.status_code == 422 and "image" in bad.json()["errors"]
        mine = designer_api.post(url, {"title": "Alley cat", "variants": "S, M, L", "image": png()})
        assert mine.status_code == 201, mine.content
        theirs = api_client_for(rival).post(url, {"title": "River", "variants": "M, L", "image": png((0, 0, 200))})
        assert theirs.status_code == 201
        # the community scores for a set period once submissions have closed
        DesignCall.objects.filter(pk=call_id).update(submissions_close_at=timezone.now() - timedelta(seconds=1))
        for voter, (a, b) in zip(voters, [(5, 3), (4, 2), (5, 4)], strict=True):
            client = api_client_for(voter)
            assert post(client, f"/api/v1/cocreation/{slug}/designs/{mine.json()['id']}/score", {"score": a}).status_code == 201
            assert post(client, f"/api/v1/cocreation/{slug}/designs/{theirs.json()['id']}/score", {"score": b}).status_code == 201
        twice = post(api_client_for(voters[0]), f"/api/v1/cocreation/{slug}/designs/{mine.json()['id']}/score", {"score": 0})
        assert twice.status_code == 409
        ranked = org_api.get(f"/api/v1/cocreation/{slug}/design-calls/{call_id}/results").json()
        assert [d["title"] for d in ranked] == ["Alley cat", "River"]

        # 3. The company chooses; the designer's login gets the production right on that product only.
        other = market.create_product(actor=maker, community=community, title="Someone else's", designer=rival,
                                      variants=["One"], unit_cost=1000, floor_price=2000)
        chosen = post(org_api, f"/api/v1/cocreation/{slug}/designs/{mine.json()['id']}/select", {
            "unit_cost": 8000, "floor_price": 15000, "low_stock_threshold": 3, "community_fund_bp": 1000,
            "production_manager_id": manager.pk})
        assert chosen.status_code == 201, chosen.content
        product = Product.objects.get(pk=chosen.json()["product_id"])
        assert got(designer, "cocreation.design_selected")
        assert ScopedGrant.objects.filter(user=designer, scope=f"production:product:{product.pk}", revoked_at=None).exists()
        production_url = f"/api/v1/cocreation/{slug}/production/{product.pk}"
        assert designer_api.get(production_url).status_code == 200
        assert designer_api.get(f"/api/v1/cocreation/{slug}/production/{other.pk}").status_code == 404
        assert api_client_for(rival).get(production_url).status_code == 404
        # the company shop accepts the designer's pumasi login (an OIDC access token) with that right
        client_app, _secret = register_client(actor=maker, community=community, name="Company shop",
                                              redirect_uris=["https://shop.example/cb"],
                                              scopes=["openid", "grants", "read"])
        access = AccessToken.objects.create(user=designer, application=client_app.application, token="oidc-designer-token",
                                            expires=timezone.now() + timedelta(hours=10), scope="openid grants read")
        oidc_api = Client(HTTP_AUTHORIZATION=f"Bearer {access.token}")
        assert oidc_api.get(production_url).status_code == 200

        # 4. The designer writes a production plan and requests production (bad plans change nothing).
        variants = {v.label: v for v in product.variants.all()}
        plan_url = f"/api/v1/cocreation/{slug}/production/{product.pk}/requests"
        zero = post(designer_api, plan_url, {"quantities": {str(variants["M"].pk): 0}, "target_date": str(timezone.localdate())})
        assert zero.status_code == 422
        assert post(designer_api, plan_url, {"quantities": {str(variants["M"].pk): -5},
                                            "target_date": str(timezone.localdate())}).status_code == 422
        assert not ProductionOrder.objects.exists()
        planned = post(designer_api, plan_url, {"quantities": {str(variants["S"].pk): 5, str(variants["M"].pk): 10,
                                                               str(variants["L"].pk): 5},
                                               "target_date": str(timezone.localdate() + timedelta(days=7)),
                                               "materials": "cotton 30s"})
        assert planned.status_code == 201 and planned.json()["kind"] == "first"
        run = planned.json()["id"]
        assert got(manager, "cocreation.production_requested")

        # 5. The company produces: organisers in the API, the company's system by a signed event.
        step = f"/api/v1/cocreation/{slug}/production-orders/{run}/status"
        assert post(designer_api, step, {"status": "in_production"}).status_code in (403, 404)
        assert post(org_api, step, {"status": "done"}).status_code == 409  # one step at a time
        assert post(org_api, step, {"status": "in_production", "note": "cutting"}).status_code == 200
        from pumasi.platform.webhooks import create_inbound_endpoint

        endpoint = create_inbound_endpoint(actor=maker, community=community, name="ERP")
        erp = Client()
        assert signed(erp, endpoint, "production.status", {"production_order_id": run, "status": "done"}, "m1").status_code == 200
        assert [e.payload["status"] for e in got(designer, "cocreation.production_progress")] == ["in_production", "done"]

        # 6. Completion: stocked, and the product is listed in the shop.
        assert post(org_api, step, {"status": "stocked"}).status_code == 200
        product.refresh_from_db()
        assert product.status == "listed" and got(designer, "market.product_listed")
        assert {v.label: v.stock for v in product.variants.all()} == {"S": 5, "M": 10, "L": 5}

        # 7. The designer sets price and terms, never under the floor.
        price_url = f"/api/v1/market/{slug}/products/{product.pk}/price"
        assert designer_api.patch(price_url, data=json.dumps({"price": 14000}), content_type="application/json").status_code == 422
        assert designer_api.patch(price_url, data=json.dumps({"price": 25000, "terms": "Exchange within 7 days"}),
                                  content_type="application/json").status_code == 200

        # 8. The designer promotes it: the shop page carries a preview card.
        page = Client().get(f"/c/{slug}/shop/{product.pk}/")
        assert '<meta property="og:title" content="Alley cat">' in page.content.decode()

        # 9. The shop sells (member and guest); the buyer's review reaches the designer.
        buyer_api = api_client_for(buyer)
        order_url = f"/api/v1/market/{slug}/products/{product.pk}/orders"
        first = post(buyer_api, order_url, {"lines": [{"variant_id": variants["M"].pk, "quantity": 2}],
                                            "shipping_address": "1 Alley, Seoul"}).json()["number"]
        guest = post(Client(), order_url, {"lines": [{"variant_id": variants["S"].pk, "quantity": 1}],
                                           "shipping_address": "2 Beach, Busan", "guest_email": "g@example.org",
                                           "guest_name": "Guest"}).json()["number"]
        for number, amount in [(first, 50000), (guest, 25000)]:
            assert post(org_api, f"/api/v1/market/{slug}/orders/{number}/confirm-payment",
                        {"amount_received": amount}).status_code == 200
        assert post(org_api, f"/api/v1/market/{slug}/orders/{first}/confirm-payment",
                    {"amount_received": 50000}).json()["code"] == "already_paid"
        assert post(buyer_api, f"/api/v1/market/{slug}/orders/{first}/review", {"rating": 5, "text": "Lovely"}).status_code == 201
        assert "5/5" in got(designer, "market.review")[0].payload["title"]

        # 10. The company ships; shipping events reach the designer (one from the carrier's system).
        for number in (first, guest):
            assert post(org_api, f"/api/v1/market/{slug}/orders/{number}/ship",
                        {"carrier": "CJ", "tracking_number": f"CJ-{number[-4:]}"}).status_code == 200
        assert signed(erp, endpoint, "market.shipping", {"order": first, "kind": "in_transit", "location": "Hub"}, "m2").status_code == 200
        for number in (first, guest):
            assert post(org_api, f"/api/v1/market/{slug}/orders/{number}/shipping-events", {"kind": "delivered"}).status_code == 201
        kinds = [e.payload["kind"] for e in got(designer, "market.shipping")]
        assert kinds.count("handed_over") == 2 and "in_transit" in kinds and kinds.count("delivered") == 2

        # 12. Stock falls to the threshold: the production manager and the designer are alerted once.
        third = post(buyer_api, order_url, {"lines": [{"variant_id": variants["M"].pk, "quantity": 5}],
                                            "shipping_address": "1 Alley, Seoul"}).json()["number"]
        fourth = post(buyer_api, order_url, {"lines": [{"variant_id": variants["M"].pk, "quantity": 1}],
                                             "shipping_address": "1 Alley, Seoul"}).json()["number"]
        assert len(got(designer, "market.low_stock")) == 1 and len(got(manager, "market.low_stock")) == 1
        over = post(buyer_api, order_url, {"lines": [{"variant_id": variants["M"].pk, "quantity": 3}],
                                           "shipping_address": "1 Alley, Seoul"})
        assert over.status_code == 409 and Variant.objects.get(pk=variants["M"].pk).stock == 2
        # a cancellation gives stock back; a refund gives stock and money back
        assert post(buyer_api, f"/api/v1/market/{slug}/orders/{fourth}/cancel").status_code == 200
        assert post(org_api, f"/api/v1/market/{slug}/orders/{third}/confirm-payment", {"amount_received": 125000}).status_code == 200
        assert post(org_api, f"/api/v1/market/{slug}/orders/{third}/refund", {"restock": True}).status_code == 200
        assert Variant.objects.get(pk=variants["M"].pk).stock == 8

        # 13. The designer decides on more production and requests it.
        again = post(designer_api, plan_url, {"quantities": {str(variants["M"].pk): 20},
                                              "target_date": str(timezone.localdate() + timedelta(days=5))})
        assert again.status_code == 201 and again.json()["kind"] == "reproduction"
        # 14–15. The company re-produces (progress messages) and the stock is received.
        step = f"/api/v1/cocreation/{slug}/production-orders/{again.json()['id']}/status"
        for status in ("in_production", "done", "stocked"):
            assert post(org_api, step, {"status": status}).status_code == 200
        assert Variant.objects.get(pk=variants["M"].pk).stock == 28
        assert [e.payload["status"] for e in got(designer, "cocreation.production_progress")][-3:] == [
            "in_production", "done", "stocked"]

    # 11. Sales and stock reports reach the designer (the daily job for the day just ended).
    assert market.send_reports(period="daily") >= 1
    assert got(designer, "market.report")
    run = ReportRun.objects.get(designer=designer, period="daily")
    [sold] = [p for p in run.content["products"] if p["id"] == product.pk]
    assert (sold["units"], sold["revenue"], sold["refunds"]) == (8, 200000, 1)
    assert {v["label"]: v["stock"] for v in sold["variants"]} == {"S": 4, "M": 28, "L": 5}

    # 16. The company settles the day and pays the designer's share; the figures reach them.
    period = timezone.localtime(day_start).date()
    settled = post(org_api, f"/api/v1/market/{slug}/settlements",
                   {"period_start": str(period), "period_end": str(period + timedelta(days=1))})
    assert settled.status_code == 200, settled.content
    # per unit at 25000: cost 8000; of the 17000 left: royalty 20 % 3400, fund 10 % 1700, margin 11900
    units = 3  # two M to the member and one S to the guest, delivered; the refunded order is reversed
    statement = Statement.objects.get(member=designer)
    assert (statement.earned, statement.paid) == (3400 * units, 3400 * units)
    assert statement.lines.count() == 2  # one line per sale (the member's order, the guest's)
    assert got(designer, "market.settled")[0].payload["paid"] == 3400 * units
    lines = designer_api.get(f"/api/v1/market/{slug}/statements").json()["items"][0]["lines"]
    assert sum(line["amount"] for line in lines) == 3400 * units
    assert balance(community, f"member:{designer.pk}") == 0
    assert balance(community, "cash") == 25000 * units - 3400 * units
    assert balance(community, "shop:production") == -8000 * units
    assert balance(community, "shop:fund") == -1700 * units
    assert balance(community, "shop:margin") == -11900 * units
    assert balance(community, "shop:escrow") == 0

    # 17. The company ends the sale; the designer's access and tokens are withdrawn at once.
    assert designer_api.get(production_url).status_code == 200
    assert post(org_api, f"/api/v1/market/{slug}/products/{product.pk}/end").status_code == 200
    assert designer_api.get(production_url).status_code == 404
    assert designer_api.patch(price_url, data=json.dumps({"price": 30000}), content_type="application/json").status_code == 403
    assert post(designer_api, plan_url, {"quantities": {str(variants["M"].pk): 1},
                                         "target_date": str(timezone.localdate() + timedelta(days=5))}).status_code == 404
    assert oidc_api.get(production_url).status_code == 401
    assert not AccessToken.objects.filter(pk=access.pk).exists()
    assert got(designer, "market.sale_ended")
    assert Order.objects.filter(product=product, status="delivered").count() == 2
