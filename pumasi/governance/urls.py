"""Pages of the governance capability."""

app_name = "governance"
urlpatterns: list = []
