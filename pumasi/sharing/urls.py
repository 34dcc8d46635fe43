"""Pages of the sharing capability."""

app_name = "sharing"
urlpatterns: list = []
