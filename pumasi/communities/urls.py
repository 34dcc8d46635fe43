"""Pages for communities: landing, create, home, members, invitations, audit log, join."""

from django.urls import path

from pumasi.communities import views

app_name = "communities"
urlpatterns = [
    path("", views.landing, name="landing"),
    path("new/", views.create, name="create"),
    path("join/<str:token>/", views.join, name="join"),
    path("c/<slug:slug>/", views.home, name="home"),
    path("c/<slug:slug>/join/", views.join_open, name="join_open"),
    path("c/<slug:slug>/leave/", views.leave, name="leave"),
    path("c/<slug:slug>/members/", views.members, name="members"),
    path("c/<slug:slug>/members/<int:membership_id>/role/", views.change_role, name="change_role"),
    path("c/<slug:slug>/invitations/", views.invitations, name="invitations"),
    path("c/<slug:slug>/invitations/<int:invitation_id>/revoke/", views.revoke_invitation, name="revoke_invitation"),
    path("c/<slug:slug>/audit/", views.audit_log, name="audit"),
]
