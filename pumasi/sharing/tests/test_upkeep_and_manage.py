"""Upkeep costs posted to the ledger as expenses (service, API, the zone's admin page), and the
organiser's page for sharing rules and sensors."""

from __future__ import annotations

import pytest
from django.test import Client

from pumasi.core.errors import InvalidInput, PermissionDenied
from pumasi.ledger import selectors as ledger_selectors
from pumasi.ledger import services as ledger
from pumasi.ledger.models import Transaction
from pumasi.platform.models import AuditEntry
from pumasi.sharing import services
from pumasi.sharing.models import Device, PolicyWindow


def fill_fund(alley, amount: int) -> None:
    """What visitors' fees set aside: cash in, owed to the zone's upkeep fund."""
    _expense, fund = services.upkeep_accounts(alley.zone)
    ledger.post_transaction(community=alley.community, actor=None, idempotency_key=f"fees-{amount}", memo="fees",
                            postings=[(ledger.standard_account(community=alley.community, key="cash"), amount),
                                      (fund, -amount)])


def balances(alley) -> dict:
    expense, fund = services.upkeep_accounts(alley.zone)
    community = alley.community
    return {"expense": ledger_selectors.balance_of(expense), "fund": -ledger_selectors.balance_of(fund),
            "cash": ledger_selectors.balance_of(ledger.standard_account(community=community, key="cash")),
            "income": -ledger_selectors.balance_of(ledger.standard_account(community=community, key="income"))}


def test_a_cost_paid_from_the_fund_is_an_expense_and_releases_the_earmark(alley):
    fill_fund(alley, 50_000)
    entry = services.record_upkeep_cost(actor=alley.chief, zone=alley.zone, amount=32_000,
                                        description="센서 배터리 교체 Sensor batteries", paid_from="fund",
                                        idempotency_key="batteries-2026-05")
    assert entry.kind == "sharing_upkeep" and entry.reference["zone"] == "alley"
    assert balances(alley) == {"expense": 32_000, "fund": 18_000, "cash": 18_000, "income": 32_000}
    # Sent twice (a double click): the same entry, nothing new.
    again = services.record_upkeep_cost(actor=alley.chief, zone=alley.zone, amount=32_000,
                                        description="센서 배터리 교체 Sensor batteries", paid_from="fund",
                                        idempotency_key="batteries-2026-05")
    assert again.pk == entry.pk
    assert AuditEntry.objects.filter(action="sharing.upkeep_cost_recorded").count() == 1
    # More than the fund holds: refused, saying so, nothing written.
    with pytest.raises(InvalidInput) as refused:
        services.record_upkeep_cost(actor=alley.chief, zone=alley.zone, amount=18_001, description="Board repair")
    assert "18000" in refused.value.field_errors["amount"][0]
    cash_paid = services.record_upkeep_cost(actor=alley.chief, zone=alley.zone, amount=90_000,
                                            description="Board repair", paid_from="cash")
    assert balances(alley) == {"expense": 122_000, "fund": 18_000, "cash": -72_000, "income": 32_000}
    assert Transaction.objects.filter(kind="sharing_upkeep").count() == 2 and cash_paid.pk != entry.pk


def test_bad_upkeep_input_gets_per_field_errors_and_members_may_not_post(alley):
    with pytest.raises(InvalidInput) as refused:
        services.record_upkeep_cost(actor=alley.chief, zone=alley.zone, amount=0, description=" ",
                                    paid_from="wallet", idempotency_key="x")
    assert set(refused.value.field_errors) == {"amount", "description", "paid_from", "idempotency_key"}
    with pytest.raises(PermissionDenied):
        services.record_upkeep_cost(actor=alley.member, zone=alley.zone, amount=100, description="Signs",
                                    paid_from="cash")
    assert not Transaction.objects.filter(kind="sharing_upkeep").exists()


def test_upkeep_api(alley, api_client_for):
    fill_fund(alley, 10_000)
    client = api_client_for(alley.chief)
    made = client.post("/api/v1/sharing/zones/alley/upkeep-costs", {"amount": 4_000, "description": "Sign paint"},
                       content_type="application/json")
    assert made.status_code == 201, made.content
    assert made.json()["amount"] == 4_000 and made.json()["paid_from"] == "fund"
    listed = client.get("/api/v1/sharing/zones/alley/upkeep-costs").json()
    assert [row["description"] for row in listed] == ["Sign paint"]
    bad = client.post("/api/v1/sharing/zones/alley/upkeep-costs", {"amount": 99_000, "description": "Too much"},
                      content_type="application/json")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert api_client_for(alley.member).get("/api/v1/sharing/zones/alley/upkeep-costs").status_code == 403
    read_only = api_client_for(alley.chief, scopes=["read"])
    assert read_only.post("/api/v1/sharing/zones/alley/upkeep-costs", {"amount": 1, "description": "x"},
                          content_type="application/json").status_code == 403


def test_manage_page_posts_costs_and_edits_rules_and_sensors(alley, make_user):
    fill_fund(alley, 20_000)
    chief = Client()
    chief.force_login(alley.chief)
    page = chief.get("/z/alley/manage")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="idempotency_key"' in html and "alley-a1" in html and "Night" in html
    key = page.context["upkeep_form"].initial["idempotency_key"]
    posted = chief.post("/z/alley/manage/upkeep", {"amount": "7000", "description": "Board bulbs",
                                                   "paid_from": "fund", "idempotency_key": key})
    assert posted.status_code == 302
    assert "Board bulbs" in chief.get("/z/alley/manage").content.decode()
    too_much = chief.post("/z/alley/manage/upkeep", {"amount": "99000", "description": "x", "paid_from": "fund",
                                                     "idempotency_key": "another-key-1"})
    assert too_much.status_code == 422 and too_much.context["upkeep_form"].errors["amount"]

    # A rule that contradicts the day rule is refused on save, naming it; a fresh one is added.
    clash = chief.post("/z/alley/manage/rules", {"name": "More day", "days": ["Mon"], "start_time": "10:00",
                                                 "end_time": "12:00", "audience": "anyone", "fee_per_hour": "0",
                                                 "notice_minutes": "0"})
    assert clash.status_code == 422 and "Day" in str(clash.context["window_form"].errors)
    added = chief.post("/z/alley/manage/rules", {"name": "Sunday visitors", "days": ["Sun"], "start_time": "09:00",
                                                 "end_time": "18:00", "audience": "anyone", "fee_per_hour": "500",
                                                 "notice_minutes": "0"})
    assert added.status_code == 302
    window = PolicyWindow.objects.get(zone=alley.zone, name="Sunday visitors")
    assert chief.post(f"/z/alley/manage/rules/{window.pk}/remove").status_code == 302
    assert not PolicyWindow.objects.filter(pk=window.pk).exists()

    # A sensor for a space that has one already is refused per field; a new one shows its secret once.
    services.add_resource(actor=alley.chief, zone=alley.zone, code="A4")
    taken = chief.post("/z/alley/manage/devices", {"external_id": "alley-new", "code": "A1", "interval_seconds": "300"})
    assert taken.status_code == 422 and taken.context["device_form"].errors["code"]
    made = chief.post("/z/alley/manage/devices", {"external_id": "alley-a4", "code": "A4", "interval_seconds": "300"})
    assert made.status_code == 200
    device = Device.objects.get(external_id="alley-a4")
    assert device.secret in made.content.decode()
    assert device.secret not in chief.get("/z/alley/manage").content.decode()


def test_manage_page_is_for_the_committee_only(alley, make_user):
    member = Client()
    member.force_login(alley.member)
    assert member.get("/z/alley/manage").status_code == 403
    outsider = Client()
    outsider.force_login(make_user())
    assert outsider.get("/z/alley/manage").status_code == 404
    assert Client().get("/z/alley/manage").status_code == 302  # to sign in
