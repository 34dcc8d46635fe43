"""Pages of the cocreation capability."""

app_name = "cocreation"
urlpatterns: list = []
