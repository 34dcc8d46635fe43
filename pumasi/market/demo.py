"""Demo data of the shop (scenario 2): in Seoul Threads' community a design call with designs and
scores, one chosen design produced, listed and sold, orders at every state, a low-stock alert, a
settled month that paid designer1, and designer1 mid-way through a re-production.
Idempotent: a second run adds nothing."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from pumasi.market import services
from pumasi.market.models import Order, Product

CALL_TITLE = "2026 봄 시즌 공동디자인 티셔츠 공모"


def _picture(colour: tuple[int, int, int], text: str) -> SimpleUploadedFile:
    image = Image.new("RGB", (600, 600), colour)
    ImageDraw.Draw(image).text((40, 280), text, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return SimpleUploadedFile(f"{text}.png", out.getvalue(), content_type="image/png")


def _order(product, buyer, size_qty: dict[str, int], *, at: datetime | None = None) -> Order:
    variants = {v.label: v for v in product.variants.all()}
    order = services.place_order(actor=buyer, product=Product.objects.get(pk=product.pk), shipping_address="서울시 금천구 시흥대로 126길 7",
                                 lines=[{"variant_id": variants[k].pk, "quantity": q} for k, q in size_qty.items()])
    if at is not None:  # history: the order was placed on that day
        Order.objects.filter(pk=order.pk).update(created_at=at)
        order.refresh_from_db()
    return order


@transaction.atomic
def seed(world) -> None:
    from pumasi.cocreation import services_design as design
    from pumasi.cocreation.models import DesignCall, ProductionOrder

    community = world.maker
    if DesignCall.objects.filter(community=community, title=CALL_TITLE).exists():
        return
    people = world.people
    maker, production = people["maker"], people["production"]
    designers = [people["designer1"], people["designer2"], people["designer3"]]
    buyers = [people[f"buyer{i}"] for i in range(1, 6)]
    zone = ZoneInfo(community.time_zone)
    now = timezone.now()
    services.update_shop_settings(actor=maker, community=community, payment_destination="escrow",
                                  bank_account="우리은행 1002-123-456789 (주)서울스레드", platform_share_bp=500)

    # Steps 1–2: the call, three designs, the community's scores.
    call = design.open_call(
        actor=maker, community=community, title=CALL_TITLE, royalty_bp=2000,
        brief="서울의 골목을 주제로 한 봄 티셔츠 디자인을 모집합니다. 선정작은 생산·판매되고 디자이너는 판매 수익의 로열티를 받습니다.",
        submissions_close_at=now + timedelta(days=1), scoring_closes_at=now + timedelta(days=2),
        terms="로열티: 단위당 (판매가 − 생산원가)의 20 %. 커뮤니티 기금 5 %, 플랫폼 몫 5 % 이내.")
    entries = []
    for index, (person, title, colour) in enumerate(zip(designers, ["골목길 고양이", "Hanok Lines", "한강 노을"],
                                                        [(31, 111, 80), (11, 92, 173), (164, 22, 26)], strict=True)):
        entries.append(design.submit_design(actor=person, call=call, title=title, image=_picture(colour, f"design{index}"),
                                            description=f"{title} — 면 100 %, 실크스크린 2도", variants=["S", "M", "L"]))
    DesignCall.objects.filter(pk=call.pk).update(submissions_close_at=now - timedelta(days=40),
                                                 scoring_closes_at=now + timedelta(days=2))
    call.refresh_from_db()
    scores = {0: [5, 5, 4, 5, 4], 1: [3, 4, 3, 2, 4], 2: [4, 3, 4, 3, 3]}
    for index, entry in enumerate(entries):
        entry.call = call
        for buyer, value in zip(buyers, scores[index], strict=True):
            design.score_design(actor=buyer, design=entry, score=value)
    DesignCall.objects.filter(pk=call.pk).update(scoring_closes_at=now - timedelta(days=38))
    call.refresh_from_db()

    # Step 3: the winner is chosen; designer1 gets the production right on that product only.
    winner = design.ranked(call)[0]
    winner.call = call
    product = design.select_design(actor=maker, design=winner, unit_cost=9000, floor_price=18000,
                                   low_stock_threshold=5, production_manager=production, community_fund_bp=500)
    # Steps 4–6: the first run is planned, produced, stocked and listed; step 7: the price.
    variants = {v.label: v for v in product.variants.all()}
    first = design.request_production(actor=people["designer1"], product=product,
                                      quantities={str(variants["S"].pk): 20, str(variants["M"].pk): 30,
                                                  str(variants["L"].pk): 20},
                                      target_date=timezone.localdate(), materials="면 100 % 30수, 수성 실크스크린 잉크")
    for step, note in [("in_production", "재단 시작"), ("done", "검수 완료"), ("stocked", "창고 입고")]:
        first = design.advance_production(actor=production, order=first, status=step, note=note)
    product.refresh_from_db()
    product = services.set_price_and_terms(actor=people["designer1"], product=product, price=29000,
                                           terms="교환·반품: 수령 후 7일 이내. 세탁 시 뒤집어서 찬물 세탁.")

    # Last month: sales delivered and settled (step 16 pays designer1).
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    for index, (buyer, sizes) in enumerate(zip(buyers[:3], [{"M": 2}, {"S": 1, "L": 1}, {"M": 1}], strict=True)):
        day = datetime(last_month.year, last_month.month, 5 + index * 5, 11, 0, tzinfo=zone)
        order = _order(product, buyer, sizes, at=day)
        services.confirm_payment(actor=maker, order=order, amount_received=order.total, received_at=day + timedelta(hours=3))
        services.ship_order(actor=production, order=order, carrier="CJ대한통운", tracking_number=f"CJ{640000 + index}")
        services.add_shipping_event(actor=production, order=order, kind="delivered", location="서울",
                                    occurred_at=day + timedelta(days=2))
        if index == 0:
            services.add_review(actor=buyer, order=order, rating=5, text="핏이 좋고 프린트가 선명해요!")
    services.settle_period(actor=maker, community=community, period_start=last_month, period_end=this_month)

    # This month: orders at every state; the M size falls to the threshold (one low-stock alert).
    delivered = _order(product, buyers[3], {"M": 3})
    services.confirm_payment(actor=maker, order=delivered, amount_received=delivered.total)
    services.ship_order(actor=production, order=delivered, carrier="우체국택배", tracking_number="KP-7781234")
    services.add_shipping_event(actor=production, order=delivered, kind="in_transit", location="대전 허브")
    services.add_shipping_event(actor=production, order=delivered, kind="delivered", location="서울 금천구")
    shipped = _order(product, buyers[4], {"M": 6})
    services.confirm_payment(actor=maker, order=shipped, amount_received=shipped.total)
    services.ship_order(actor=production, order=shipped, carrier="CJ대한통운", tracking_number="CJ6409999")
    services.add_shipping_event(actor=production, order=shipped, kind="in_transit", location="군포 허브")
    paid = _order(product, buyers[0], {"M": 8})
    services.confirm_payment(actor=maker, order=paid, amount_received=paid.total)
    _order(product, buyers[1], {"M": 7})  # pending: waiting for the transfer -> M now at 3 (alert)
    services.place_order(actor=None, product=product, guest_email="guest@example.com", guest_name="비회원 구매자",
                         shipping_address="부산시 해운대구 우동 1", lines=[{"variant_id": variants["S"].pk, "quantity": 1}])
    cancelled = _order(product, buyers[2], {"L": 1})
    services.cancel_order(actor=buyers[2], order=cancelled)
    refunded = _order(product, buyers[3], {"S": 1})
    services.confirm_payment(actor=maker, order=refunded, amount_received=refunded.total)
    services.refund_order(actor=maker, order=refunded, reason="사이즈 교환 대신 환불 요청")

    # Steps 12–14: the alert went out; designer1 asked for a re-production, now in production.
    again = design.request_production(actor=people["designer1"], product=product,
                                      quantities={str(variants["M"].pk): 40, str(variants["S"].pk): 10},
                                      target_date=timezone.localdate() + timedelta(days=14), materials="면 100 % 30수",
                                      note="M 사이즈 재고 부족으로 재생산 요청")
    design.advance_production(actor=production, order=again, status="in_production", note="원단 입고, 재단 중")
    assert ProductionOrder.objects.filter(product=product, status="in_production").exists()
