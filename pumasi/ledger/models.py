"""Database models of the ledger capability."""
