"""Database models of the insight capability."""
