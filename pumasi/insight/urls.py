"""Pages of the insight capability."""

app_name = "insight"
urlpatterns: list = []
