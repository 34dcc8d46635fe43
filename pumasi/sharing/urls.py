"""Pages of the sharing capability: the zone, its live board, its value, booking."""

from django.urls import path

from pumasi.sharing import views

app_name = "sharing"
urlpatterns = [
    path("z/<slug:slug>/", views.zone_home, name="zone"),
    path("z/<slug:slug>/board", views.board, name="board"),
    path("z/<slug:slug>/board/fragment", views.board_fragment, name="board_fragment"),
    path("z/<slug:slug>/board/wait", views.board_wait, name="board_wait"),
    path("z/<slug:slug>/book", views.book, name="book"),
    path("z/<slug:slug>/value", views.value, name="value"),
    path("z/<slug:slug>/spaces/<str:code>/sharing", views.toggle_sharing, name="toggle_sharing"),
    path("z/<slug:slug>/sessions/<int:session_id>/claim", views.claim, name="claim"),
    path("z/<slug:slug>/bookings/<int:booking_id>/cancel", views.cancel, name="cancel"),
    path("z/<slug:slug>/manage", views.manage, name="manage"),
    path("z/<slug:slug>/manage/upkeep", views.manage_upkeep, name="manage_upkeep"),
    path("z/<slug:slug>/manage/rules", views.manage_add_window, name="manage_add_window"),
    path("z/<slug:slug>/manage/rules/<int:window_id>/remove", views.manage_remove_window, name="manage_remove_window"),
    path("z/<slug:slug>/manage/devices", views.manage_add_device, name="manage_add_device"),
    path("z/booking/<str:reference>", views.visitor_booking, name="visitor_booking"),
]
