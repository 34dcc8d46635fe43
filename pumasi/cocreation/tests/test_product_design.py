"""Community product design: calls, designs with validated images, scores once per member in
the scoring period, ranked results, selection granting one product's production right, and
production orders moving one step at a time with a message to the designer at each."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from pumasi.cocreation import services_design as design
from pumasi.cocreation.models import Design, DesignCall, DesignScore, ProductionOrder
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.market import permissions as market_permissions
from pumasi.market.models import Variant
from pumasi.platform.models import Event

pytestmark = pytest.mark.django_db


def picture(fmt="PNG", exif=False) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image = Image.new("RGB", (80, 60), (10, 120, 60))
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"
        image.save(buffer, format=fmt, exif=data)
    else:
        image.save(buffer, format=fmt)
    return SimpleUploadedFile(f"d.{fmt.lower()}", buffer.getvalue())


@pytest.fixture
def call(community):
    now = timezone.now()
    return design.open_call(actor=community.organiser, community=community, title="Tee call", brief="Draw it",
                            submissions_close_at=now + timedelta(hours=1), scoring_closes_at=now + timedelta(hours=2),
                            royalty_bp=1500)


def close_submissions(call):
    DesignCall.objects.filter(pk=call.pk).update(submissions_close_at=timezone.now() - timedelta(seconds=1))
    call.refresh_from_db()


def test_call_needs_future_deadline_and_scoring_after_it(community):
    now = timezone.now()
    with pytest.raises(InvalidInput) as info:
        design.open_call(actor=community.organiser, community=community, title="", brief="x",
                         submissions_close_at=now - timedelta(hours=1), scoring_closes_at=now - timedelta(hours=2),
                         royalty_bp=0)
    assert {"title", "submissions_close_at", "scoring_closes_at", "royalty_bp"} <= set(info.value.field_errors)
    assert not DesignCall.objects.exists()


def test_design_image_validated_and_reencoded_without_metadata(call, member_of):
    designer = member_of(call.community)
    with pytest.raises(InvalidInput) as info:
        design.submit_design(actor=designer, call=call, title="Bad", variants=["S"],
                             image=SimpleUploadedFile("x.png", b"<script>alert(1)</script>"))
    assert "image" in info.value.field_errors
    made = design.submit_design(actor=designer, call=call, title="Good", variants=["S", "M"], image=picture("JPEG", exif=True))
    with Image.open(made.image.path) as stored:
        assert not stored.getexif()
    assert [v.label for v in made.variants.all()] == ["S", "M"]
    with pytest.raises(InvalidInput):
        design.submit_design(actor=designer, call=call, title="Dup", variants=["S", "S"], image=picture())
    close_submissions(call)
    with pytest.raises(Conflict):
        design.submit_design(actor=designer, call=call, title="Late", variants=["S"], image=picture())


def test_scoring_once_per_member_within_the_period_and_ranking(call, member_of):
    a, b = member_of(call.community), member_of(call.community)
    voters = [member_of(call.community) for _ in range(2)]
    first = design.submit_design(actor=a, call=call, title="A", variants=["S"], image=picture())
    second = design.submit_design(actor=b, call=call, title="B", variants=["S"], image=picture())
    with pytest.raises(Conflict):
        design.score_design(actor=voters[0], design=first, score=5)  # submissions still open
    close_submissions(call)
    first.call = second.call = call
    with pytest.raises(InvalidInput):
        design.score_design(actor=voters[0], design=first, score=6)
    with pytest.raises(Conflict):
        design.score_design(actor=a, design=first, score=5)  # own design
    design.score_design(actor=voters[0], design=first, score=2)
    design.score_design(actor=voters[1], design=first, score=3)
    design.score_design(actor=voters[0], design=second, score=4)
    with pytest.raises(Conflict):
        design.score_design(actor=voters[0], design=first, score=5)
    assert DesignScore.objects.count() == 3
    assert [d.title for d in design.ranked(call)] == ["B", "A"]
    DesignCall.objects.filter(pk=call.pk).update(scoring_closes_at=timezone.now() - timedelta(seconds=1))
    call.refresh_from_db()
    second.call = call
    with pytest.raises(Conflict):
        design.score_design(actor=voters[1], design=second, score=5)


def test_selection_grants_one_product_and_production_flows(call, member_of):
    organiser = call.community.organiser
    designer = member_of(call.community)
    entry = design.submit_design(actor=designer, call=call, title="Cat", variants=["S", "M"], image=picture())
    with pytest.raises(Conflict):
        design.select_design(actor=organiser, design=entry, unit_cost=5000, floor_price=9000)
    close_submissions(call)
    entry.call = call
    with pytest.raises(PermissionDenied):
        design.select_design(actor=designer, design=entry, unit_cost=5000, floor_price=9000)
    with pytest.raises(InvalidInput):
        design.select_design(actor=organiser, design=entry, unit_cost=5000, floor_price=4000)
    assert Design.objects.get(pk=entry.pk).status == "submitted"
    product = design.select_design(actor=organiser, design=entry, unit_cost=5000, floor_price=9000)
    assert product.royalty_bp == 1500 and market_permissions.has_production_right(designer, product)
    with pytest.raises(Conflict):
        design.select_design(actor=organiser, design=entry, unit_cost=5000, floor_price=9000)
    variants = {v.label: v.pk for v in product.variants.all()}
    with pytest.raises(InvalidInput) as info:
        design.request_production(actor=designer, product=product, quantities={str(variants["S"]): 0, "999": 2},
                                  target_date=timezone.localdate())
    assert {"quantities.999", f"quantities.{variants['S']}"} <= set(info.value.field_errors)
    run = design.request_production(actor=designer, product=product, quantities={str(variants["S"]): 4},
                                    target_date=timezone.localdate())
    with pytest.raises(Conflict):
        design.request_production(actor=designer, product=product, quantities={str(variants["M"]): 1},
                                  target_date=timezone.localdate())
    with pytest.raises(Conflict):
        design.advance_production(actor=organiser, order=run, status="done")
    for status in ("in_production", "done", "stocked"):
        run = design.advance_production(actor=organiser, order=run, status=status)
    assert Variant.objects.get(pk=variants["S"]).stock == 4
    product.refresh_from_db()
    assert product.status == "listed"
    progress = [e.payload["status"] for e in Event.objects.filter(recipient=designer,
                                                                  name="cocreation.production_progress").order_by("pk")]
    assert progress == ["in_production", "done", "stocked"]
    again = design.request_production(actor=designer, product=product, quantities={str(variants["M"]): 2},
                                      target_date=timezone.localdate())
    assert again.plan.kind == "reproduction"
    outsider = member_of(call.community)
    with pytest.raises(NotFound):
        design.production_order_for(outsider, call.community, again.pk)
    with pytest.raises(PermissionDenied):  # the listed product is public, its production is not
        design.request_production(actor=outsider, product=product, quantities={str(variants["M"]): 2},
                                  target_date=timezone.localdate())
    assert ProductionOrder.objects.count() == 2


def test_share_page_is_public_with_preview_card(call, client):
    page = client.get(f"/c/{call.community.slug}/design-calls/{call.pk}/")
    assert page.status_code == 200
    assert '<meta property="og:title" content="Tee call">' in page.content.decode()


def test_production_pages_for_designer_and_organiser(call, member_of):
    from django.test import Client

    from pumasi.tests.factories import PASSWORD

    organiser = call.community.organiser
    designer = member_of(call.community)
    entry = design.submit_design(actor=designer, call=call, title="Cat", variants=["S"], image=picture())
    close_submissions(call)
    entry.call = call
    product = design.select_design(actor=organiser, design=entry, unit_cost=5000, floor_price=9000)
    variant = product.variants.get()

    def login(user):
        client = Client()
        assert client.login(email=user.email, password=PASSWORD)
        return client

    base = f"/c/{call.community.slug}/production/{product.pk}/"
    mine = login(designer)
    assert mine.get(base).status_code == 200
    assert login(member_of(call.community)).get(base).status_code == 404
    mine.post(base + "request/", {f"qty_{variant.pk}": "6", "target_date": str(timezone.localdate())})
    run = ProductionOrder.objects.get(product=product)
    login(organiser).post(f"/c/{call.community.slug}/production-orders/{run.pk}/status/", {"status": "in_production"})
    run.refresh_from_db()
    assert run.status == "in_production"
    assert "In production" in mine.get(base).content.decode()  # the step by its name
