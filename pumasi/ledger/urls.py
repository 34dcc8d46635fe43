"""Pages of the ledger capability."""

app_name = "ledger"
urlpatterns: list = []
