"""Surveys: answering rules, statistics against hand-computed values and scipy, cross-tab, CSV."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from scipy import stats as scipy_stats

from pumasi.cocreation import selectors, services, stats
from pumasi.cocreation.models import SurveyParticipation, SurveyResponse
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied

QUESTIONS = [
    {"kind": "single", "prompt": "어디에 사세요?", "choices": ["1통", "2통", "3통"]},
    {"kind": "multiple", "prompt": "언제 주차하세요?", "choices": ["아침", "낮", "밤"]},
    {"kind": "likert", "prompt": "만족하십니까?"},
    {"kind": "number", "prompt": "차가 몇 대?", "required": False},
    {"kind": "text", "prompt": "하고 싶은 말", "required": False},
]


@pytest.fixture
def survey(community):
    return services.create_survey(actor=community.organiser, community=community, title="주차 설문", questions=QUESTIONS)


def _answers(survey, single, multiple, likert, number=None, text=""):
    q = selectors.questions(survey)
    return {str(q[0].pk): single, str(q[1].pk): multiple, str(q[2].pk): likert, str(q[3].pk): number, str(q[4].pk): text}


def test_t_quantile_matches_scipy():
    for df in (1, 2, 3, 4, 7, 19, 30, 99, 199, 5000):
        assert stats.t_quantile(0.975, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-9)
        assert stats.t_quantile(0.05, df) == pytest.approx(scipy_stats.t.ppf(0.05, df), abs=1e-9)
    assert stats.t_cdf(1.5, 6) == pytest.approx(scipy_stats.t.cdf(1.5, 6), abs=1e-12)
    # The textbook table: t(0.975, 9) = 2.262, t(0.975, 4) = 2.776.
    assert stats.t_quantile(0.975, 9) == pytest.approx(2.262, abs=5e-4)
    assert stats.t_quantile(0.975, 4) == pytest.approx(2.776, abs=5e-4)


def test_summary_hand_computed_and_edge_cases():
    # 2, 4, 4, 5: mean 3.75, s^2 = (3.0625+.0625+.0625+1.5625)/3 = 1.58333, s = 1.258306
    # half-width = 3.182446 * 1.258306 / 2 = 2.002245
    s = stats.summarize([2, 4, 4, 5])
    assert s.mean == pytest.approx(3.75)
    assert s.sd == pytest.approx(1.258306, abs=1e-6)
    assert (s.ci_low, s.ci_high) == (pytest.approx(1.747755, abs=1e-5), pytest.approx(5.752245, abs=1e-5))
    values = [1, 3, 3, 4, 5, 5, 2]
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=scipy_stats.sem(values))
    got = stats.summarize(values)
    assert (got.ci_low, got.ci_high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert stats.summarize([]).mean is None and stats.summarize([]).ci_low is None
    one = stats.summarize([4])
    assert one.mean == 4 and one.ci_low is None and one.sd is None
    same = stats.summarize([3, 3, 3])
    assert (same.mean, same.sd, same.ci_low, same.ci_high) == (3, 0, 3, 3)


@pytest.mark.django_db
def test_results_counts_percentages_and_ci(community, survey, member_of):
    rows = [("0", ["0", "2"], 5, 1), ("0", ["2"], 4, 2), ("1", ["0", "1", "2"], 4, None), ("2", ["1"], 2, 0)]
    for single, multiple, likert, number in rows:
        services.submit_response(survey=survey, actor=member_of(community), answers=_answers(survey, single, multiple, likert, number))
    total, results = selectors.results(survey)
    assert total == 4
    single, multiple, likert, number, text = results
    assert [(o.count, o.percent) for o in single.options] == [(2, 50.0), (1, 25.0), (1, 25.0)]
    assert [(o.count, o.percent) for o in multiple.options] == [(2, 50.0), (2, 50.0), (3, 75.0)]
    assert [o.count for o in likert.options] == [0, 1, 0, 2, 1]
    assert likert.summary.mean == pytest.approx(3.75) and likert.summary.ci_low == pytest.approx(1.747755, abs=1e-5)
    assert number.answered == 3 and number.summary.mean == pytest.approx(1.0)
    assert text.answered == 0 and text.texts == []


@pytest.mark.django_db
def test_results_with_no_one_and_with_one_response(community, survey, member_of):
    total, results = selectors.results(survey)
    assert total == 0 and results[2].summary.mean is None and all(o.percent == 0 for o in results[0].options)
    services.submit_response(survey=survey, actor=member_of(community), answers=_answers(survey, "1", ["1"], "3", "7", "좋아요"))
    total, results = selectors.results(survey)
    assert results[2].summary.mean == 3 and results[2].summary.ci_low is None
    assert results[4].texts == ["좋아요"]


@pytest.mark.django_db
def test_one_response_per_member_and_anonymity(community, survey, member_of):
    person = member_of(community)
    services.submit_response(survey=survey, actor=person, answers=_answers(survey, "0", ["0"], "3"))
    with pytest.raises(Conflict) as exc:
        services.submit_response(survey=survey, actor=person, answers=_answers(survey, "1", ["1"], "4"))
    assert exc.value.code == "already_answered"
    assert SurveyResponse.objects.filter(survey=survey).count() == 1
    assert SurveyResponse.objects.get().respondent_id is None  # anonymous: no link to the person
    assert SurveyParticipation.objects.filter(survey=survey, user=person).exists()


@pytest.mark.django_db
def test_invalid_answers_are_refused_per_question(community, survey, member_of):
    person = member_of(community)
    q = selectors.questions(survey)
    with pytest.raises(InvalidInput) as exc:
        services.submit_response(survey=survey, actor=person, answers={
            str(q[0].pk): "9", str(q[1].pk): [], str(q[2].pk): "6", str(q[3].pk): "many", "999999": "x"})
    assert set(exc.value.field_errors) == {f"answers.{q[0].pk}", f"answers.{q[1].pk}", f"answers.{q[2].pk}",
                                           f"answers.{q[3].pk}", "answers.999999"}
    assert SurveyResponse.objects.count() == 0 and SurveyParticipation.objects.count() == 0


@pytest.mark.django_db
def test_closed_and_scheduled_surveys_refuse_answers(community, survey, member_of):
    person = member_of(community)
    later = services.create_survey(actor=community.organiser, community=community, title="later",
                                   opens_at=timezone.now() + timedelta(days=1), questions=QUESTIONS[:1])
    with pytest.raises(Conflict):
        services.submit_response(survey=later, actor=person, answers={str(selectors.questions(later)[0].pk): "0"})
    services.close_survey(actor=community.organiser, survey=survey)
    with pytest.raises(Conflict) as exc:
        services.submit_response(survey=survey, actor=person, answers=_answers(survey, "0", ["0"], "3"))
    assert exc.value.code == "survey_closed"
    with pytest.raises(InvalidInput):
        services.create_survey(actor=community.organiser, community=community, title="x",
                               opens_at=timezone.now(), closes_at=timezone.now() - timedelta(hours=1))


@pytest.mark.django_db
def test_invitation_tokens_answer_once_without_an_account(community, survey):
    tokens = services.create_survey_invitations(actor=community.organiser, survey=survey, count=2)
    client = Client()
    url = f"/api/v1/survey-invitations/{tokens[0].token}/response"
    body = {"answers": _answers(survey, 0, [1, 2], 4, 2.5, "토큰 응답")}
    first = client.post(url, body, content_type="application/json")
    assert first.status_code == 201, first.content
    again = client.post(url, body, content_type="application/json")
    assert again.status_code == 409
    assert client.post("/api/v1/survey-invitations/nope/response", body, content_type="application/json").status_code == 404
    with pytest.raises(NotFound):
        services.submit_response(survey=survey, answers={}, token="wrong")
    assert SurveyResponse.objects.filter(via_invitation=True).count() == 1


@pytest.mark.django_db
def test_results_visibility_rule(community, survey, member_of):
    person, other = member_of(community), member_of(community)
    services.submit_response(survey=survey, actor=person, answers=_answers(survey, "0", ["0"], "3"))
    assert selectors.may_see_results(community.organiser, survey)
    assert not selectors.may_see_results(person, survey)
    services.set_results_visibility(actor=community.organiser, survey=survey, visible=True)
    survey.refresh_from_db()
    assert selectors.may_see_results(person, survey)
    assert not selectors.may_see_results(other, survey)  # has not answered
    with pytest.raises(PermissionDenied):
        selectors.require_results(other, survey)


@pytest.mark.django_db
def test_crosstab_and_csv(community, survey, member_of):
    rows = [("0", ["0", "2"], "5"), ("0", ["2"], "4"), ("1", ["0"], "4")]
    for single, multiple, likert in rows:
        services.submit_response(survey=survey, actor=member_of(community), answers=_answers(survey, single, multiple, likert, None, "=HYPERLINK(\"x\")"))
    q = selectors.questions(survey)
    tab = selectors.crosstab(survey, q[0].pk, q[1].pk)
    assert tab.cells == [[1, 0, 2], [1, 0, 0], [0, 0, 0]]
    assert tab.total == 3 and tab.row_totals == [3, 1, 0]
    likert_tab = selectors.crosstab(survey, q[0].pk, q[2].pk)
    assert likert_tab.cells[0] == [0, 0, 0, 1, 1]
    with pytest.raises(InvalidInput):
        selectors.crosstab(survey, q[0].pk, q[3].pk)  # a number question
    table = list(csv.reader(io.StringIO(selectors.results_csv(survey))))
    assert table[0][2:] == [x["prompt"] for x in QUESTIONS]
    assert table[1][2:5] == ["1통", "1통" and "아침; 밤", "5"]
    assert table[1][6].startswith("'=")  # a formula is neutralised for spreadsheets
    assert len(table) == 4


@pytest.mark.django_db
def test_results_page_has_svg_chart_and_table(community, survey, member_of):
    person = member_of(community)
    services.submit_response(survey=survey, actor=person, answers=_answers(survey, "0", ["0"], "3", "2"))
    client = Client()
    client.force_login(community.organiser)
    page = client.get(f"/c/{community.slug}/surveys/{survey.pk}/results/").content.decode()
    assert page.count("<svg") >= 4 and "<table>" in page and "<th scope=\"row\">1통</th>" in page
    csv_response = client.get(f"/c/{community.slug}/surveys/{survey.pk}/results.csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    assert not math.isnan(selectors.results(survey)[1][2].summary.mean)
    member_client = Client()
    member_client.force_login(person)
    assert member_client.get(f"/c/{community.slug}/surveys/{survey.pk}/results/").status_code == 302
