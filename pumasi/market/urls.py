"""Pages of the market capability."""

app_name = "market"
urlpatterns: list = []
