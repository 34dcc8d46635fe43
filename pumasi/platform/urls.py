"""Platform pages: personal access tokens."""

from django.urls import path

from pumasi.platform import views

app_name = "platform"
urlpatterns = [
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
]
