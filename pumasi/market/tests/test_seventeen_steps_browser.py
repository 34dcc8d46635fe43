"""Scenario 2 of the product brief in the browser: the 17 steps from a design call to the designer's
payout and the end of the sale, done by the people who do them in the real product — the
organiser, the designer, a member buyer and a guest buyer, each in their own phone-sized Korean
browser — while the company's systems (ERP, carrier) speak to the real API and signed inbound
endpoints. At each step the right person finds the right message on their notifications page (the
guest, who has no account, by e-mail); access to production appears at selection and is gone after
the end of the sale; at the end every ledger balance equals the expected split to the won. Every page
visited is checked with axe (no serious or critical violation) and for sideways scrolling at 360 px.

Steps 1–15 run "yesterday" (time-machine, ticking; it moves the live server's clock too) so that
step 16 can settle a finished day, as the API walk does."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from PIL import Image

from pumasi.cocreation.models import Design, DesignCall, ProductionOrder
from pumasi.ledger.models import AccountBalance, Statement
from pumasi.market import services as market
from pumasi.market.models import Order, Product, Variant
from pumasi.platform import webhooks
from pumasi.platform.models import ScopedGrant
from pumasi.platform.services import create_api_token
from pumasi.tests.browser.conftest import axe_violations, horizontal_overflow
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser

TITLE = "골목 고양이"


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def balance(community, code) -> int:
    row = AccountBalance.objects.filter(account__community=community, account__code=code).first()
    return row.balance if row else 0


class Checked:
    """axe and the 360 px check once per kind of page (the same template needs no second run)."""

    def __init__(self):
        self.kinds: set[str] = set()

    def __call__(self, page, kind: str) -> None:
        if kind in self.kinds:
            return
        self.kinds.add(kind)
        assert axe_violations(page) == [], f"{kind}: {axe_violations(page)}"
        assert horizontal_overflow(page) <= 0, f"{kind} scrolls sideways at 360 px"


def press(page, target) -> None:
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        target.click()


def notice(page, text: str):
    """The person's notifications page, and the entry that contains `text` (waits for it)."""
    page.goto("/notifications/")
    entry = page.locator(".notification-list li").filter(has_text=text)
    entry.first.wait_for()
    return entry


def signed(request, site, endpoint, event_type: str, data: dict, message_id: str):
    """The company's system: a Standard-Webhooks-signed event to the inbound endpoint."""
    body = json.dumps({"type": event_type, "data": data})
    stamp = int(time.time())
    response = request.post(f"{site}/api/v1/hooks/in/{endpoint.pk}", data=body, headers={
        "Content-Type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(stamp),
        "webhook-signature": webhooks.sign(endpoint.secret, message_id, stamp, body)})
    assert response.status == 200, response.text()
    return response.json()


def test_seventeen_steps_in_the_browser(new_context, site, transactional_db):
    from pumasi.platform.webhooks import create_inbound_endpoint

    community = CommunityFactory(slug="threads", name="실과 바늘", kind="company", time_zone="Asia/Seoul")
    people = {}
    for key, name, role in [("organiser", "운영자", "organiser"), ("designer", "디자이너", "member"),
                            ("rival", "경쟁 디자이너", "member"), ("buyer", "구매자", "member"), ("voter", "투표자", "member")]:
        people[key] = UserFactory(display_name=name, language="ko")
        MembershipFactory(community=community, user=people[key], role=role)
    organiser, designer, buyer = people["organiser"], people["designer"], people["buyer"]
    slug = community.slug
    check = Checked()
    org = new_context("ko", organiser).new_page()
    des = new_context("ko", designer).new_page()
    buy = new_context("ko", buyer).new_page()
    guest = new_context("ko").new_page()
    machines = new_context("ko").request  # the company's ERP and the carrier's system: no browser, no session
    _token, org_secret = create_api_token(user=organiser, name="ERP", scopes=["read", "cocreation:write"])
    erp = create_inbound_endpoint(actor=organiser, community=community, name="ERP")
    seoul = ZoneInfo("Asia/Seoul")
    day_start = (timezone.localtime(timezone.now(), seoul) - timedelta(days=1)).replace(hour=9, minute=0, second=0,
                                                                                       microsecond=0)

    with time_machine.travel(day_start, tick=True):
        local_now = timezone.localtime(timezone.now(), seoul)

        # 1. The organiser opens a call; anyone opens its share page, which carries a preview card.
        org.goto(f"/c/{slug}/design-calls/")
        check(org, "design calls")
        press(org, org.get_by_role("link", name="디자인 공모 열기"))
        check(org, "new call form")
        org.get_by_label("제목").fill("봄 티셔츠 공모")
        org.get_by_label("공모 안내").fill("서울의 골목을 티셔츠에 그려 주세요.")
        org.get_by_label("응모 마감").fill((local_now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
        org.get_by_label("평가 마감").fill((local_now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        org.get_by_label("디자이너 로열티 (한 개당 마진의 퍼센트)").fill("20")
        org.get_by_label("조건").fill("로열티는 판매가에서 단가를 뺀 금액의 20 %입니다.")
        press(org, org.get_by_role("button", name="공모 열기"))
        # scoring that closes before submissions do is refused beside its field, and nothing is written
        scoring = org.locator("#id_scoring_closes_at")
        assert scoring.get_attribute("aria-invalid") == "true"
        assert scoring.locator("xpath=..").locator(".errorlist").inner_text() == "평가 마감은 응모 마감 뒤여야 합니다."
        assert not DesignCall.objects.exists()
        org.get_by_label("평가 마감").fill((local_now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
        press(org, org.get_by_role("button", name="공모 열기"))
        org.wait_for_url("**/design-calls/*/")
        call = DesignCall.objects.get()
        assert call.royalty_bp == 2000
        share_url = org.url
        guest.goto(share_url)
        assert guest.locator('meta[property="og:title"]').get_attribute("content") == "봄 티셔츠 공모"
        assert "골목" in guest.locator('meta[property="og:description"]').get_attribute("content")
        assert guest.locator('meta[name="twitter:card"]').count() == 1
        check(guest, "call share page")

        # 2. Members (signed in with their existing login) submit designs with a picture.
        for page, title, colour in [(des, TITLE, (200, 30, 30)), (new_context("ko", people["rival"]).new_page(),
                                                                   "한강", (0, 0, 200))]:
            page.goto(share_url)
            page.get_by_label("제목").fill(title)
            page.get_by_label("설명").fill("면 100 %, 한 가지 색 인쇄")
            page.get_by_label("옵션, 쉼표로 구분 (예: S, M, L)").fill("S, M, L")
            page.get_by_label("이미지 (JPEG, PNG, WebP, 최대 5 MB)").set_input_files(
                {"name": "design.png", "mimeType": "image/png", "buffer": png(colour)})
            press(page, page.get_by_role("button", name="응모", exact=True))
            page.locator(".message").first.wait_for()
            check(page, "call page, member")
        mine = Design.objects.get(title=TITLE)
        assert mine.image and mine.variants.count() == 3

        # The organiser closes submissions; the community scores (0–5, once each).
        org.goto(share_url)
        press(org, org.get_by_role("button", name="지금 응모를 마감하고 채점 시작"))
        org.get_by_text("이제 채점이 시작되었습니다.").wait_for()
        voter = new_context("ko", people["voter"]).new_page()
        for page, scores in [(buy, {TITLE: "5", "한강": "3"}), (voter, {TITLE: "4", "한강": "2"})]:
            page.goto(share_url)
            for title, score in scores.items():
                card = page.locator("li.card").filter(has=page.get_by_role("heading", name=title))
                card.get_by_label("내 점수 (0~5)").fill(score)
                press(page, card.get_by_role("button", name="평가"))
                page.locator(".message").first.wait_for()
        check(buy, "call page, scoring")
        org.goto(share_url)
        press(org, org.get_by_role("button", name="지금 채점 마감"))
        org.get_by_text("채점이 마감되어 결과가 확정되었습니다.").wait_for()
        assert org.locator("li.card h3").all_inner_texts()[:2] == [TITLE, "한강"]  # ranked by mean score
        check(org, "ranked results")

        # 3. The organiser chooses the design; the designer's login gets production access to it only.
        production_before = ScopedGrant.objects.filter(user=designer).count()
        card = org.locator("li.card").filter(has=org.get_by_role("heading", name=TITLE))
        card.locator("summary").click()
        card.get_by_label("단가").fill("8000")
        card.get_by_label("최저 판매가").fill("7000")  # under the unit cost: refused beside the field
        card.get_by_label("재고 부족 알림 기준").fill("3")
        card.get_by_label("공동체 기금 (한 개당 마진의 퍼센트)").fill("10")
        card.get_by_label("생산 관리자").select_option(label="운영자")
        press(org, card.get_by_role("button", name="이 디자인을 선정하고 생산 권한 부여"))
        card = org.locator("li.card").filter(has=org.get_by_role("heading", name=TITLE))
        floor = card.get_by_label("최저 판매가")
        assert floor.get_attribute("aria-invalid") == "true"
        assert "8000" in card.locator(".errorlist").first.inner_text()
        assert not Product.objects.exists() and ScopedGrant.objects.filter(user=designer).count() == production_before
        floor.fill("15000")
        press(org, card.get_by_role("button", name="이 디자인을 선정하고 생산 권한 부여"))
        org.wait_for_url("**/production/*/")
        product = Product.objects.get()
        production_url = f"/c/{slug}/production/{product.pk}/"
        assert ScopedGrant.objects.filter(user=designer, scope=f"production:product:{product.pk}", revoked_at=None).exists()
        assert buy.goto(production_url).status == 404  # nobody else sees the production system
        entry = notice(des, "선정되었습니다")
        check(des, "notifications")
        entry.get_by_role("link").click()
        des.wait_for_url(f"**{production_url}")
        check(des, "production page")

        # 4. The designer writes the production plan and requests it (an empty plan changes nothing).
        des.get_by_label("목표일").fill(str(timezone.localdate() + timedelta(days=7)))
        press(des, des.get_by_role("button", name="생산 요청"))
        des.get_by_text("옵션 하나 이상에 수량을 입력하세요.").wait_for()
        assert not ProductionOrder.objects.exists()
        for label, qty in [("S", "5"), ("M", "10"), ("L", "5")]:
            des.get_by_label(f"{label} 수량").fill(qty)
        des.get_by_label("재료").fill("면 30수")
        des.get_by_label("목표일").fill(str(timezone.localdate() + timedelta(days=7)))
        press(des, des.get_by_role("button", name="생산 요청"))
        des.get_by_text("계획됨").first.wait_for()
        run = ProductionOrder.objects.get()
        notice(org, f"{TITLE} 생산 요청: ")  # the production manager hears of it

        # 5. The company produces: the organiser in the UI, then the ERP through the signed endpoint.
        org.goto(production_url)
        check(org, "production page, organiser")
        org.get_by_label("메모", exact=True).last.fill("재단 시작")
        press(org, org.get_by_role("button", name="갱신"))
        org.get_by_text("재단 시작").first.wait_for()
        signed(machines, site, erp, "production.status", {"production_order_id": run.pk, "status": "done"}, "erp-1")
        assert ProductionOrder.objects.get(pk=run.pk).status == "done"
        notice(des, "생산: 생산 중. 재단 시작")
        notice(des, "생산: 완료")

        # 6. Completion: the organiser stocks the run; the product is listed in the shop.
        org.goto(production_url)
        press(org, org.get_by_role("button", name="갱신"))
        org.get_by_text("재고 입고").first.wait_for()
        product.refresh_from_db()
        assert product.status == "listed"
        assert {v.label: v.stock for v in product.variants.all()} == {"S": 5, "M": 10, "L": 5}
        notice(des, "상점에 올라갔습니다")

        # 7. The designer sets price and terms, never under the floor (refused beside the field).
        product_url = f"/c/{slug}/shop/{product.pk}/"
        des.goto(product_url)
        check(des, "product page, designer")
        des.get_by_label("가격", exact=True).fill("14000")
        press(des, des.get_by_role("button", name="저장"))
        price = des.get_by_label("가격", exact=True)
        assert price.get_attribute("aria-invalid") == "true"
        assert des.locator(".field").filter(has=price).locator(".errorlist").inner_text() == \
            "가격은 최저 가격 15000보다 낮을 수 없습니다."
        assert Product.objects.get(pk=product.pk).price == 15000
        price.fill("25000")
        des.get_by_label("판매 조건").fill("수령 후 7일 안에 교환")
        press(des, des.get_by_role("button", name="저장"))
        des.get_by_text("가격과 조건을 저장했습니다.").wait_for()
        assert Product.objects.get(pk=product.pk).price == 25000

        # 8. The designer promotes it: the shop page carries a preview card with the design.
        guest.goto(product_url)
        assert guest.locator('meta[property="og:title"]').get_attribute("content") == TITLE
        assert guest.locator('meta[property="og:image"]').get_attribute("content").startswith(site)
        check(guest, "product page, guest")

        # 9. The shop sells, to a guest with an e-mail address and to a member.
        guest.get_by_label("배송 주소").fill("부산 해운대구 바닷길 2")
        guest.get_by_label("이름").fill("손님")
        guest.get_by_label("이메일 주소").fill("guest@example.org")
        guest.get_by_label("S (재고: 5)").fill("1")
        press(guest, guest.get_by_role("button", name="주문하기"))
        guest.wait_for_url("**/shop/orders/*/")
        check(guest, "order page")
        guest_order_url = guest.url
        buy.goto(product_url)
        check(buy, "product page, member")
        buy.get_by_label("배송 주소").fill("서울 금천구 골목길 1")
        buy.get_by_label("M (재고: 10)").fill("2")
        press(buy, buy.get_by_role("button", name="주문하기"))
        buy.wait_for_url("**/shop/orders/*/")
        buyer_order_url = buy.url
        member_order = Order.objects.get(buyer=buyer)
        guest_order = Order.objects.get(guest_email="guest@example.org")
        notice(des, f"주문 {member_order.number}")

        # The organiser confirms both bank transfers at the order desk (the amount is pre-filled).
        org.goto(f"/c/{slug}/shop/orders/")
        check(org, "order desk")
        for number in (member_order.number, guest_order.number):
            press(org, org.locator("tr").filter(has_text=number).get_by_role("button", name="입금 확인"))
            org.locator("tr").filter(has_text=number).get_by_role("button", name="발송").wait_for()
        notice(buy, f"주문 {member_order.number}의 입금을 확인했습니다.")
        notice(des, f"판매: {TITLE} 주문 {member_order.number}의 결제가 완료되었습니다.")

        # 10. The organiser ships with tracking numbers; the carrier's system reports the journey.
        for number, tracking in [(member_order.number, "CJ-1001"), (guest_order.number, "CJ-1002")]:
            row = org.locator("tr").filter(has_text=number)
            row.get_by_label("택배사").fill("CJ대한통운")
            row.get_by_label("운송장 번호").fill(tracking)
            press(org, row.get_by_role("button", name="발송"))
            org.locator("tr").filter(has_text=number).get_by_role("button", name="기록").wait_for()
        signed(machines, site, erp, "market.shipping",
               {"order": member_order.number, "kind": "in_transit", "location": "옥천 허브"}, "carrier-1")
        for number in (member_order.number, guest_order.number):
            row = org.locator("tr").filter(has_text=number)
            row.get_by_label("이벤트").select_option("delivered")
            press(org, row.get_by_role("button", name="기록"))
            org.get_by_text(f"주문 {number}").first.wait_for()
        assert Order.objects.filter(status="delivered").count() == 2
        notice(buy, "CJ-1001")
        notice(des, "CJ-1002")
        notice(des, "옥천 허브")
        guest.goto(guest_order_url)
        guest.get_by_text("CJ-1002").wait_for()
        assert any("CJ-1002" in m.body and m.to == ["guest@example.org"] for m in mail.outbox)

        # 9 (cont.). The buyer reviews; the review reaches the designer.
        buy.goto(buyer_order_url)
        buy.get_by_label("평점 (1~5)").fill("5")
        buy.get_by_label("후기").fill("핏이 좋아요")
        press(buy, buy.get_by_role("button", name="후기 보내기"))
        buy.locator(".message").first.wait_for()
        check(buy, "order page, member")
        notice(des, f"{TITLE} 새 후기: 5/5 – 핏이 좋아요")

        # 12. Stock falls to the threshold: the production manager and the designer are alerted once.
        for quantity in ("5", "1"):
            buy.goto(product_url)
            buy.get_by_label(re.compile(r"^M \(재고")).fill(quantity)
            buy.get_by_label("배송 주소").fill("서울 금천구 골목길 1")
            press(buy, buy.get_by_role("button", name="주문하기"))
            buy.wait_for_url("**/shop/orders/*/")
        assert Variant.objects.get(product=product, label="M").stock == 2
        for page in (des, org):
            assert notice(page, "재고 부족").count() == 1
        # the last order is cancelled by the buyer; the one before is paid and refunded by the organiser
        press(buy, buy.get_by_role("button", name="주문 취소"))
        buy.locator(".message").first.wait_for()
        big = Order.objects.get(buyer=buyer, status="pending")
        org.goto(f"/c/{slug}/shop/orders/")
        press(org, org.locator("tr").filter(has_text=big.number).get_by_role("button", name="입금 확인"))
        press(org, org.locator("tr").filter(has_text=big.number).get_by_role("button", name="환불"))
        org.get_by_text(f"주문 {big.number}").first.wait_for()
        assert Order.objects.get(pk=big.pk).status == "refunded"
        assert Variant.objects.get(product=product, label="M").stock == 8

        # 13. The designer decides on more production and requests it.
        des.goto(production_url)
        des.get_by_label("M 수량").fill("20")
        des.get_by_label("목표일").fill(str(timezone.localdate() + timedelta(days=5)))
        press(des, des.get_by_role("button", name="생산 요청"))
        des.get_by_text("재생산").first.wait_for()
        again = ProductionOrder.objects.exclude(pk=run.pk).get()
        notice(org, f"{TITLE} 재생산 요청")

        # 14. The company re-produces: its system through the REST API and the signed endpoint…
        response = machines.post(f"{site}/api/v1/cocreation/{slug}/production-orders/{again.pk}/status",
                                 data=json.dumps({"status": "in_production", "note": "2차 재단"}),
                                 headers={"Authorization": f"Bearer {org_secret}", "Content-Type": "application/json"})
        assert response.status == 200, response.text()
        signed(machines, site, erp, "production.status", {"production_order_id": again.pk, "status": "done"}, "erp-2")
        notice(des, "생산: 생산 중. 2차 재단")
        # 15. …and the organiser receives the stock.
        org.goto(production_url)
        press(org, org.get_by_role("button", name="갱신"))
        org.get_by_text("재고 입고").first.wait_for()
        assert Variant.objects.get(product=product, label="M").stock == 28
        notice(des, f"{TITLE} 생산: 재고 입고")

    # 11. The daily job sends yesterday's sales and stock report; the designer opens it.
    assert market.send_reports(period="daily") >= 1
    entry = notice(des, "상점 보고서")
    entry.get_by_role("link").first.click()
    des.wait_for_url("**/shop/reports/*/")
    des.get_by_role("rowheader", name="M").wait_for()
    check(des, "report page")

    # 16. The organiser settles yesterday; the designer's share is paid and the figures reach them.
    period = day_start.date()
    org.goto(f"/c/{slug}/shop/statements/")
    check(org, "statements, organiser")
    org.get_by_label("시작일 (첫날)").fill(str(period))
    org.get_by_label("종료일 (마지막 날의 다음 날)").fill(str(period))  # an empty period: refused beside the field
    press(org, org.get_by_role("button", name="정산하고 지급하기"))
    assert org.get_by_label("종료일 (마지막 날의 다음 날)").get_attribute("aria-invalid") == "true"
    org.get_by_label("종료일 (마지막 날의 다음 날)").fill(str(period + timedelta(days=1)))
    press(org, org.get_by_role("button", name="정산하고 지급하기"))
    org.get_by_text("정산 완료").wait_for()
    # per unit at 25000: cost 8000; of the 17000 left: royalty 20 % 3400, fund 10 % 1700, margin 11900
    units = 3  # two M to the member, one S to the guest, delivered; the refunded order is reversed
    entry = notice(des, f"지급액 {3400 * units}")
    entry.get_by_role("link").first.click()
    des.wait_for_url("**/shop/statements/")
    check(des, "statements, designer")
    statement = des.locator("section.statement")
    assert statement.locator("tbody tr").count() == 2  # one line per sale
    assert "10,200" in statement.inner_text()
    assert (Statement.objects.get(member=designer).earned, Statement.objects.get(member=designer).paid) == (10200, 10200)
    assert balance(community, f"member:{designer.pk}") == 0
    assert balance(community, "cash") == 25000 * units - 3400 * units
    assert balance(community, "shop:production") == -8000 * units
    assert balance(community, "shop:fund") == -1700 * units
    assert balance(community, "shop:margin") == -11900 * units
    assert balance(community, "shop:escrow") == 0

    # 17. The organiser ends the sale; the production page the designer used a moment ago is gone.
    assert des.goto(production_url).status == 200
    org.goto(product_url)
    check(org, "product page, organiser")
    press(org, org.get_by_role("button", name="판매 종료"))
    org.locator(".message").first.wait_for()
    assert des.goto(production_url).status == 404
    des.goto(product_url)
    assert des.get_by_label("가격", exact=True).count() == 0  # no price form any more
    assert not ScopedGrant.objects.filter(user=designer, revoked_at=None).exists()
    notice(des, f"{TITLE}의 판매가 종료되어 생산 권한이 회수되었습니다.")
