"""Platform pages: tokens, notifications, unsubscribe, the organisers' open-platform page, Atom,
OpenID discovery at the site root, and the PWA manifest and service worker."""

from django.urls import path

from pumasi.platform import views

app_name = "platform"
urlpatterns = [
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
    path(".well-known/openid-configuration", views.discovery, name="discovery"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/preference/", views.notification_preference, name="notification_preference"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("c/<slug:slug>/platform/", views.community_platform, name="community_platform"),
    path("c/<slug:slug>/feed.atom", views.community_atom, name="community_atom"),
    path("manifest.webmanifest", views.web_manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("offline/", views.offline, name="offline"),
    path("notifications/push/subscribe/", views.push_subscribe, name="push_subscribe"),
    path("notifications/push/unsubscribe/", views.push_unsubscribe, name="push_unsubscribe"),
]

# A person's calendar feed of their bookings: the settings page and the private feed URL.
urlpatterns += [
    path("me/calendar/", views.my_calendar, name="my_calendar"),
    path("me/calendar/<str:token>.ics", views.calendar_feed, name="calendar_feed"),
]
