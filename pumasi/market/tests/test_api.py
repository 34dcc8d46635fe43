"""The shop through the API: guests and members order, organisers confirm and ship, errors are
problem+json with per-field messages, scopes are enforced, and the designer's token stops
working on their product the moment the sale ends."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from pumasi.market.models import Order, Variant

pytestmark = pytest.mark.django_db


def post(client, url, body=None, **headers):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **headers)


def patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def test_public_product_list_and_guest_order(shop):
    slug = shop.community.slug
    anonymous = Client()
    listing = anonymous.get(f"/api/v1/market/{slug}/products")
    assert listing.status_code == 200
    [item] = listing.json()["items"]
    assert item["price"] == 20000 and {v["label"] for v in item["variants"]} == {"S", "M", "L"}
    assert "unit_cost" in item
    response = post(anonymous, f"/api/v1/market/{slug}/products/{shop.product.pk}/orders", {
        "lines": [{"variant_id": shop.variants["L"].pk, "quantity": 2}], "shipping_address": "1 Guest road, Busan",
        "guest_email": "guest@example.org", "guest_name": "Guest"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total"] == 40000 and body["payment_reference"].startswith("PM")
    read = anonymous.get(f"/api/v1/market/{slug}/orders/{body['number']}?token={body['access_token']}")
    assert read.status_code == 200 and read.json()["status"] == "pending"
    assert anonymous.get(f"/api/v1/market/{slug}/orders/{body['number']}").status_code == 404
    cancel = anonymous.post(f"/api/v1/market/{slug}/orders/{body['number']}/cancel?token={body['access_token']}")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert Variant.objects.get(pk=shop.variants["L"].pk).stock == 10


def test_bad_order_is_problem_json_with_fields(shop, api_client_for):
    client = api_client_for(shop.buyer)
    url = f"/api/v1/market/{shop.community.slug}/products/{shop.product.pk}/orders"
    response = post(client, url, {"lines": [{"variant_id": 424242, "quantity": 1}], "shipping_address": "1 Road, Seoul"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "lines.0.variant_id" in response.json()["errors"]
    response = post(client, url, {"lines": [{"variant_id": shop.variants["S"].pk, "quantity": 11}],
                                  "shipping_address": "1 Road, Seoul"})
    assert response.status_code == 409 and response.json()["code"] == "out_of_stock"
    response = post(client, url, {"lines": [{"variant_id": shop.variants["S"].pk, "quantity": "many"}],
                                  "shipping_address": "1 Road, Seoul"})
    assert response.status_code == 422
    assert not Order.objects.exists()


def test_idempotency_key_header(shop, api_client_for):
    client = api_client_for(shop.buyer)
    url = f"/api/v1/market/{shop.community.slug}/products/{shop.product.pk}/orders"
    body = {"lines": [{"variant_id": shop.variants["S"].pk, "quantity": 1}], "shipping_address": "1 Road, Seoul"}
    first = post(client, url, body, HTTP_IDEMPOTENCY_KEY="abc")
    second = post(client, url, body, HTTP_IDEMPOTENCY_KEY="abc")
    assert first.json()["number"] == second.json()["number"]
    body["lines"][0]["quantity"] = 2
    assert post(client, url, body, HTTP_IDEMPOTENCY_KEY="abc").status_code == 422  # IETF draft: reused key


def test_order_lifecycle_through_api(shop, api_client_for):
    slug = shop.community.slug
    buyer = api_client_for(shop.buyer)
    organiser = api_client_for(shop.organiser)
    number = post(buyer, f"/api/v1/market/{slug}/products/{shop.product.pk}/orders", {
        "lines": [{"variant_id": shop.variants["M"].pk, "quantity": 1}], "shipping_address": "1 Road, Seoul"}).json()["number"]
    assert post(buyer, f"/api/v1/market/{slug}/orders/{number}/confirm-payment", {"amount_received": 20000}).status_code == 403
    paid = post(organiser, f"/api/v1/market/{slug}/orders/{number}/confirm-payment", {"amount_received": 20000})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    again = post(organiser, f"/api/v1/market/{slug}/orders/{number}/confirm-payment", {"amount_received": 20000})
    assert again.status_code == 409 and again.json()["code"] == "already_paid"
    shipped = post(organiser, f"/api/v1/market/{slug}/orders/{number}/ship", {"carrier": "CJ", "tracking_number": "1234-5678"})
    assert shipped.json()["status"] == "shipped"
    event = post(organiser, f"/api/v1/market/{slug}/orders/{number}/shipping-events", {"kind": "delivered"})
    assert event.status_code == 201
    review = post(buyer, f"/api/v1/market/{slug}/orders/{number}/review", {"rating": 5, "text": "Great"})
    assert review.status_code == 201
    mine = buyer.get(f"/api/v1/market/{slug}/orders").json()["items"]
    assert [o["number"] for o in mine] == [number] and mine[0]["status"] == "delivered"


def test_write_needs_market_scope(shop, api_client_for):
    client = api_client_for(shop.designer, scopes=["read"])
    response = patch(client, f"/api/v1/market/{shop.community.slug}/products/{shop.product.pk}/price", {"price": 25000})
    assert response.status_code == 403


def test_designer_token_fails_right_after_end_of_sale(shop, api_client_for):
    slug = shop.community.slug
    designer = api_client_for(shop.designer, scopes=["read", "market:write"])
    url = f"/api/v1/market/{slug}/products/{shop.product.pk}/price"
    assert patch(designer, url, {"price": 21000}).status_code == 200
    sales = f"/api/v1/market/{slug}/products/{shop.product.pk}/sales?start=2020-01-01T00:00:00Z&end=2100-01-01T00:00:00Z"
    assert designer.get(sales).status_code == 200
    assert post(api_client_for(shop.organiser), f"/api/v1/market/{slug}/products/{shop.product.pk}/end").status_code == 200
    assert patch(designer, url, {"price": 22000}).status_code == 403
    assert designer.get(sales).status_code == 403


def test_price_under_floor_via_api(shop, api_client_for):
    designer = api_client_for(shop.designer)
    response = patch(designer, f"/api/v1/market/{shop.community.slug}/products/{shop.product.pk}/price", {"price": 100})
    assert response.status_code == 422 and "price" in response.json()["errors"]


def test_private_shop_hidden_from_outsiders(shop, api_client_for, make_user):
    from pumasi.market import services

    services.update_shop_settings(actor=shop.organiser, community=shop.community, public_shop=False)
    assert Client().get(f"/api/v1/market/{shop.community.slug}/products").status_code == 404
    assert api_client_for(make_user()).get(f"/api/v1/market/{shop.community.slug}/products").status_code == 404
    assert api_client_for(shop.buyer).get(f"/api/v1/market/{shop.community.slug}/products").status_code == 200
