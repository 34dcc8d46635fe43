"""The demo seed: every status, a closed survey with 200 responses, a workspace; twice is once."""

from __future__ import annotations

import pytest

from pumasi.cocreation import demo, selectors, services
from pumasi.cocreation.models import Idea, IdeaStatus, Survey, Workspace
from pumasi.communities import demo as community_demo


@pytest.mark.django_db
def test_demo_seed_is_complete_and_idempotent():
    world = community_demo.seed()
    demo.seed(world)
    demo.seed(world)
    assert set(Idea.objects.filter(community=world.maker).values_list("status", flat=True)) == set(IdeaStatus.values)
    survey = Survey.objects.get(community=world.maker)
    assert services.survey_state(survey) == "closed"
    total, results = selectors.results(survey)
    assert total == 200 and results[2].summary.ci_low is not None
    workspace = Workspace.objects.get(community=world.maker)
    assert workspace.status == "active"
    assert max(d.version for d in workspace.documents.all()) == 3
    assert workspace.milestones.count() == 5
