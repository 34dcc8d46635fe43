"""Demo co-creation for the clothing maker (scenario 2): an idea board with ideas at every
status, a closed survey with 200 responses, and an active workspace with versioned documents
and milestones. Idempotent: each piece is made only if its title is not there yet."""

from __future__ import annotations

import random
from datetime import date, timedelta

from django.utils import timezone

from pumasi.cocreation import services
from pumasi.cocreation.models import IdeaBoard, Survey, Workspace

BOARD_TITLE = "다음 시즌, 어떤 옷을 만들까요? (Next season's ideas)"
SURVEY_TITLE = "2026 봄 컬렉션 고객 설문 (Spring collection survey)"
WORKSPACE_TITLE = "고객 공동디자인 재킷 (Co-designed jacket)"


def seed(world) -> None:
    maker = world.maker
    owner = world.people["maker"]
    members = [world.people[k] for k in ("designer1", "designer2", "designer3", "buyer1", "buyer2", "buyer3", "buyer4", "buyer5")
               if k in world.people]
    _board(maker, owner, members)
    _survey(maker, owner, [world.people.get("production"), *members])
    _workspace(maker, owner, members)


def _board(maker, owner, members) -> None:
    if IdeaBoard.objects.filter(community=maker, title=BOARD_TITLE).exists():
        return
    board = services.create_board(actor=owner, community=maker, title=BOARD_TITLE, theme="2026 FW",
                                  question="입고 싶은 옷, 고치고 싶은 점을 알려 주세요. What should we make next?",
                                  categories=["아우터", "소재", "사이즈", "친환경"])
    specs = [
        ("비 오는 날 입는 가벼운 방수 재킷", "출퇴근길에 입을 수 있는 가볍고 접히는 방수 재킷이 있으면 좋겠어요.", "아우터", None),
        ("사이즈 표에 실측 사진을", "사이즈 표만으로는 감이 안 와요. 실측 사진을 같이 올려 주세요.", "사이즈", "under_review"),
        ("재생 폴리에스터 안감", "안감을 재생 소재로 바꾸면 좋겠습니다.", "친환경", "accepted"),
        ("소매 길이 옵션", "팔이 긴 사람을 위해 소매 길이를 두 가지로 주세요.", "사이즈", "implemented"),
        ("가죽 트렌치코트", "진짜 가죽으로 만든 트렌치코트를 원해요.", "소재", "declined"),
        ("접히는 방수 자켓", "가방에 넣을 수 있는 방수 자켓!", "아우터", "merge"),
    ]
    answers = {
        "under_review": "좋은 제안입니다. 촬영 일정을 검토하고 있습니다.",
        "accepted": "다음 시즌 전 제품에 적용하기로 했습니다.",
        "implemented": "4월 출시 제품부터 소매 길이 두 가지로 나옵니다.",
        "declined": "동물 소재는 쓰지 않는다는 원칙 때문에 어렵습니다. 대체 소재를 찾고 있어요.",
    }
    made = []
    for index, (title, body, category, status) in enumerate(specs):
        author = members[index % len(members)]
        idea = services.create_idea(actor=author, board=board, title=title, body=body, category=category)
        for fan in members[: (index * 3) % len(members) + 1]:
            if fan != author:
                services.support_idea(actor=fan, idea=idea)
        services.comment_on_idea(actor=members[(index + 1) % len(members)], idea=idea, body="저도 찬성이에요!")
        if status == "implemented":
            services.change_idea_status(actor=owner, idea=idea, status="accepted", answer="만들기로 했습니다.")
        if status in answers:
            services.change_idea_status(actor=owner, idea=idea, status=status, answer=answers[status])
        made.append((idea, status))
    services.merge_ideas(actor=owner, source=made[-1][0], target=made[0][0], answer="같은 제안이라 하나로 합쳤습니다.")


def _survey(maker, owner, people) -> None:
    if Survey.objects.filter(community=maker, title=SURVEY_TITLE).exists():
        return
    survey = services.create_survey(
        actor=owner, community=maker, title=SURVEY_TITLE, anonymous=True, results_visible_to_respondents=True,
        description="봄 컬렉션을 입어 보신 분들께 여쭙니다. Thank you for wearing our spring collection.",
        opens_at=timezone.now() - timedelta(days=30),
        questions=[
            {"kind": "single", "prompt": "가장 자주 입은 옷은? (Worn most)", "choices": ["재킷", "셔츠", "바지", "원피스"]},
            {"kind": "multiple", "prompt": "어디서 입으셨나요? (Where)", "choices": ["출근", "여행", "운동", "집"]},
            {"kind": "likert", "prompt": "품질에 만족하십니까? (Quality, 1–5)"},
            {"kind": "likert", "prompt": "가격이 적당합니까? (Price, 1–5)"},
            {"kind": "number", "prompt": "올해 몇 벌 사셨나요? (Items bought)", "required": False},
            {"kind": "text", "prompt": "하고 싶은 말 (Anything else)", "required": False},
        ],
    )
    questions = list(survey.questions.order_by("position"))
    rng = random.Random(2026)
    comments = ["소매가 조금 길어요", "색이 예뻐요", "배송이 빨랐어요", "원단이 좋아요", "", "", ""]

    def answers():
        garment = rng.choices(range(4), weights=[5, 3, 3, 1])[0]
        quality = min(5, max(1, round(rng.gauss(4.0 if garment == 0 else 3.4, 0.9))))
        return {
            str(questions[0].pk): garment,
            str(questions[1].pk): sorted(set(rng.sample(range(4), rng.randint(1, 3)))),
            str(questions[2].pk): quality,
            str(questions[3].pk): min(5, max(1, round(rng.gauss(3.0, 1.1)))),
            str(questions[4].pk): rng.choice([None, 1, 1, 2, 2, 3, 4, 6]),
            str(questions[5].pk): rng.choice(comments),
        }

    members = [p for p in people if p is not None]
    for person in members:
        services.submit_response(survey=survey, actor=person, answers=answers())
    invitations = services.create_survey_invitations(actor=owner, survey=survey, count=200 - len(members), label="매장 영수증 QR")
    for invitation in invitations:
        services.submit_response(survey=survey, token=invitation.token, answers=answers())
    services.close_survey(actor=owner, survey=survey)


def _workspace(maker, owner, members) -> None:
    if Workspace.objects.filter(community=maker, title=WORKSPACE_TITLE).exists():
        return
    ws = services.create_workspace(actor=owner, community=maker, title=WORKSPACE_TITLE,
                                   description="고객 아이디어로 방수 재킷을 함께 만듭니다.",
                                   call_text="패턴, 원단, 사진에 관심 있는 분을 찾습니다.")
    for person in members[:3]:
        application = services.apply_to_workspace(actor=person, workspace=ws, motivation="디자인에 참여하고 싶습니다. 경험이 있어요.")
        services.decide_application(actor=owner, application=application, accept=True)
    services.set_workspace_status(actor=owner, workspace=ws, status=Workspace.Status.ACTIVE)
    doc = services.create_document(actor=owner, workspace=ws, title="제품 사양 (Spec)",
                                   body="# 방수 재킷\n\n- 원단: 재생 나일론\n- 색: 남색\n")
    doc = services.save_document(actor=members[0], document=doc, title="제품 사양 (Spec)",
                                 body="# 방수 재킷\n\n- 원단: 재생 나일론 2.5L\n- 색: 남색, 올리브\n- 소매: 두 가지 길이\n",
                                 base_version=doc.version)
    services.save_document(actor=members[1], document=doc, title="제품 사양 (Spec)",
                           body=doc.body + "- 무게: 350 g 이하\n", base_version=doc.version)
    services.create_document(actor=members[2], workspace=ws, title="촬영 계획", body="## 촬영\n\n비 오는 날 야외에서.")
    start = date.today()
    for offset, title in [(-14, "아이디어 정리"), (7, "패턴 확정"), (21, "시제품 제작"), (35, "착용 테스트"), (56, "출시")]:
        milestone = services.add_milestone(actor=owner, workspace=ws, title=title, starts_on=start + timedelta(days=offset),
                                           due_on=start + timedelta(days=offset + 5))
        if offset < 0:
            services.update_milestone(actor=owner, milestone=milestone, done=True)
    thread = services.start_thread(actor=members[0], workspace=ws, title="원단 샘플", body="샘플 세 가지를 받았어요. 어떤 게 좋을까요?")
    services.post_in_thread(actor=members[1], thread=thread, body="2번이 가장 가볍습니다.")
