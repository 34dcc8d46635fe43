"""Pages for the signed-in person: profile and language."""

from django.urls import path

from pumasi.accounts import views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("language/", views.set_language, name="language"),
]
