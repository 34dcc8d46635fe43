"""Database models of the governance capability."""
