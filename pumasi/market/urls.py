"""Pages of the shop."""

from django.urls import path

from pumasi.market import views

app_name = "market"
C = "c/<slug:slug>/shop/"
urlpatterns = [
    path(C, views.shop, name="shop"),
    path(C + "<int:product_id>/", views.product, name="product"),
    path(C + "<int:product_id>/order/", views.place_order, name="place_order"),
    path(C + "<int:product_id>/price/", views.set_price, name="set_price"),
    path(C + "<int:product_id>/<str:action>/", views.product_action, name="product_action"),
    path(C + "orders/", views.desk, name="desk"),
    path(C + "orders/<str:number>/<str:action>/", views.desk_action, name="desk_action"),
    path(C + "reports/<int:report_id>/", views.report, name="report"),
    path(C + "statements/", views.statements, name="statements"),
    path("shop/orders/<str:token>/", views.order, name="order"),
    path("shop/orders/<str:token>/<str:action>/", views.order_action, name="order_action"),
]
