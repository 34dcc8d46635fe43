"""Pages of the cocreation capability: idea boards, search, surveys, workspaces."""

from django.urls import path

from pumasi.cocreation import views, views_design

app_name = "cocreation"
C = "c/<slug:slug>/"
W = C + "workspaces/<int:workspace_id>/"
urlpatterns = [
    path(C + "ideas/", views.boards, name="boards"),
    path(C + "ideas/new-board/", views.board_new, name="board_new"),
    path(C + "ideas/b/<int:board_id>/", views.board, name="board"),
    path(C + "ideas/b/<int:board_id>/new/", views.idea_new, name="idea_new"),
    path(C + "ideas/<int:idea_id>/", views.idea, name="idea"),
    path(C + "ideas/<int:idea_id>/support/", views.idea_support, name="idea_support"),
    path(C + "ideas/<int:idea_id>/comment/", views.idea_comment, name="idea_comment"),
    path(C + "ideas/<int:idea_id>/follow/", views.idea_follow, name="idea_follow"),
    path(C + "ideas/<int:idea_id>/status/", views.idea_status, name="idea_status"),
    path(C + "ideas/<int:idea_id>/merge/", views.idea_merge, name="idea_merge"),
    path(C + "search/", views.search_page, name="search"),
    path("cocreation/notifications/", views.notifications, name="notifications"),
    path(C + "surveys/", views.surveys, name="surveys"),
    path(C + "surveys/new/", views.survey_new, name="survey_new"),
    path(C + "surveys/<int:survey_id>/", views.survey, name="survey"),
    path(C + "surveys/<int:survey_id>/manage/", views.survey_manage, name="survey_manage"),
    path(C + "surveys/<int:survey_id>/results/", views.survey_results, name="survey_results"),
    path(C + "surveys/<int:survey_id>/results.csv", views.survey_csv, name="survey_csv"),
    path("s/<str:token>/", views.survey_by_token, name="survey_token"),
    path(C + "workspaces/", views.workspaces, name="workspaces"),
    path(C + "workspaces/new/", views.workspace_new, name="workspace_new"),
    path(W, views.workspace, name="workspace"),
    path(W + "apply/", views.workspace_apply, name="workspace_apply"),
    path(W + "manage/", views.workspace_manage, name="workspace_manage"),
    path(W + "activity/", views.workspace_activity, name="workspace_activity"),
    path(W + "docs/new/", views.document_new, name="document_new"),
    path(W + "docs/<int:document_id>/", views.document, name="document"),
    path(W + "docs/<int:document_id>/history/", views.document_history, name="document_history"),
    path(W + "milestones/", views.milestones, name="milestones"),
    path(W + "threads/new/", views.thread_new, name="thread_new"),
    path(W + "threads/<int:thread_id>/", views.thread, name="thread"),
    path("cocreation/calendar/<int:workspace_id>/<str:token>.ics", views.calendar, name="calendar"),
    # Community product design and production (issue 6)
    path(C + "design-calls/", views_design.calls, name="design_calls"),
    path(C + "design-calls/new/", views_design.call_new, name="design_call_new"),
    path(C + "design-calls/<int:call_id>/", views_design.call_page, name="design_call"),
    path(C + "design-calls/<int:call_id>/close/", views_design.call_close, name="design_call_close"),
    path(C + "design-calls/<int:call_id>/designs/<int:design_id>/select/", views_design.select, name="design_select"),
    path(C + "design-calls/<int:call_id>/submit/", views_design.submit, name="design_submit"),
    path(C + "design-calls/<int:call_id>/designs/<int:design_id>/score/", views_design.score, name="design_score"),
    path(C + "production/<int:product_id>/", views_design.production_page, name="production"),
    path(C + "production/<int:product_id>/request/", views_design.production_request, name="production_request"),
    path(C + "production-orders/<int:order_id>/status/", views_design.production_advance, name="production_advance"),
]
