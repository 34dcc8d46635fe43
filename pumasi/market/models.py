"""Database models of the market capability."""
