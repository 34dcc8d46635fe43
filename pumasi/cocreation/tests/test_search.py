"""Search that works for Korean: trigram index for 3+ characters, LIKE for shorter terms."""

from __future__ import annotations

import pytest
from django.db import connection

from pumasi.cocreation import search, services
from pumasi.cocreation.models import SearchDocument
from pumasi.core.errors import InvalidInput


@pytest.fixture
def ideas(community, board, member_of):
    author = member_of(community)
    parking = services.create_idea(actor=author, board=board, title="주차공간을 늘려주세요",
                                   body="골목 끝 빈 땅을 주차공간으로 만들면 밤에도 자리가 생깁니다.")
    light = services.create_idea(actor=author, board=board, title="가로등 설치", body="밤길이 어두워요 <b>위험</b>")
    services.comment_on_idea(actor=author, idea=light, body="주차장 쪽 가로등도 필요합니다")
    return parking, light


@pytest.mark.django_db
def test_two_character_korean_query_uses_like_and_finds_the_idea(community, ideas):
    parking, light = ideas
    result = search.search(community=community, query="주차")
    assert result.method == "like"
    found = {(h.kind, h.object_id) for h in result.hits}
    assert ("idea", parking.pk) in found
    assert any(kind == "comment" for kind, _ in found)
    assert ("idea", light.pk) not in found
    hit = next(h for h in result.hits if h.object_id == parking.pk)
    assert "<mark>주차</mark>" in hit.snippet


@pytest.mark.django_db
def test_trigram_query_finds_korean_inside_words_and_highlights(community, ideas):
    parking, _light = ideas
    result = search.search(community=community, query="주차공간")
    assert result.method == "trigram"
    assert [h.object_id for h in result.hits if h.kind == "idea"] == [parking.pk]
    assert "<mark>주차공간</mark>" in result.hits[0].snippet
    # Two terms must both match (AND), each as a substring.
    assert [h.object_id for h in search.search(community=community, query="빈 땅을 자리가").hits] == [parking.pk]
    assert search.search(community=community, query="없는말입니다").hits == []


@pytest.mark.django_db
def test_snippets_are_escaped(community, ideas):
    result = search.search(community=community, query="어두워요")
    assert result.hits
    snippet = str(result.hits[0].snippet)
    assert "<b>" not in snippet and "&lt;b&gt;" in snippet


@pytest.mark.django_db
def test_trigram_and_like_agree(community, ideas):
    for query in ("주차공간", "가로등", "골목 끝"):
        fast = {(h.kind, h.object_id) for h in search.search(community=community, query=query).hits}
        slow = {(h.kind, h.object_id) for h in search.search(community=community, query=query, force_like=True).hits}
        assert fast == slow and fast


@pytest.mark.django_db
def test_workspace_documents_only_for_those_who_may_see_them(community, workspace, member_of):
    services.create_document(actor=community.organiser, workspace=workspace, title="패턴 설계", body="재킷 소매 패턴 초안")
    assert search.search(community=community, query="소매 패턴").hits == []
    hits = search.search(community=community, query="소매 패턴", workspace_ids={workspace.pk}).hits
    assert [h.kind for h in hits] == ["document"]


@pytest.mark.django_db
def test_surveys_are_indexed_and_edits_reindex(community, workspace):
    services.create_survey(actor=community.organiser, community=community, title="주민 만족도 조사",
                           questions=[{"kind": "likert", "prompt": "주차 환경에 만족하십니까?"}])
    assert [h.kind for h in search.search(community=community, query="만족도").hits] == ["survey"]
    doc = services.create_document(actor=community.organiser, workspace=workspace, title="초안", body="첫번째 문장")
    services.save_document(actor=community.organiser, document=doc, title="초안", body="두번째 문장", base_version=1)
    ids = {workspace.pk}
    assert search.search(community=community, query="첫번째", workspace_ids=ids).hits == []
    assert len(search.search(community=community, query="두번째", workspace_ids=ids).hits) == 1
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {search.FTS_TABLE}")
            assert cursor.fetchone()[0] == SearchDocument.objects.count()


@pytest.mark.django_db
def test_other_communities_are_not_searched(community, ideas, make_user):
    from pumasi.communities.services import create_community

    other = create_community(actor=make_user(), name="Other", slug="other-place", kind="residents")
    assert search.search(community=other, query="주차").hits == []


@pytest.mark.django_db
def test_bad_queries(community):
    with pytest.raises(InvalidInput):
        search.search(community=community, query="   ")
    with pytest.raises(InvalidInput):
        search.search(community=community, query="가" * 101)
    # FTS5 syntax characters are quoted, never parsed as query operators.
    assert search.search(community=community, query='"주차" OR NEAR(').hits == []


@pytest.mark.django_db
def test_search_api_and_page(community, ideas, member_of, api_client_for):
    from django.test import Client

    reader = member_of(community)
    data = api_client_for(reader).get(f"/api/v1/communities/{community.slug}/search", {"q": "주차"}).json()
    assert data["method"] == "like" and data["hits"]
    assert api_client_for(reader).get(f"/api/v1/communities/{community.slug}/search", {"q": ""}).status_code == 422
    client = Client()
    client.force_login(reader)
    page = client.get(f"/c/{community.slug}/search/", {"q": "주차공간"}).content.decode()
    assert "<mark>주차공간</mark>" in page
