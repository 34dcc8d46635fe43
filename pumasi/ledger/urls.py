"""Pages of the ledger capability, under c/<slug>/ledger/."""

from django.urls import path

from pumasi.ledger import views

app_name = "ledger"
urlpatterns = [
    path("c/<slug:slug>/ledger/", views.transparency, name="transparency"),
    path("c/<slug:slug>/ledger/accounts/", views.accounts, name="accounts"),
    path("c/<slug:slug>/ledger/transactions/", views.transactions, name="transactions"),
    path("c/<slug:slug>/ledger/transactions/<int:transaction_id>/", views.transaction_detail, name="transaction"),
    path("c/<slug:slug>/ledger/rules/", views.rules, name="rules"),
    path("c/<slug:slug>/ledger/statements/", views.statements, name="statements"),
    path("c/<slug:slug>/ledger/statements/<int:settlement_id>/", views.statement_print, name="statement"),
    path("c/<slug:slug>/ledger/statements/<int:settlement_id>.csv", views.statement_csv, name="statement_csv"),
    path("c/<slug:slug>/ledger/escrows/", views.escrows, name="escrows"),
    path("c/<slug:slug>/ledger/escrows/<int:escrow_id>/", views.escrow_action, name="escrow_action"),
    path("c/<slug:slug>/ledger/pools/", views.pools, name="pools"),
    path("c/<slug:slug>/ledger/pools/<int:pool_id>/", views.pool_detail, name="pool"),
]
