"""Database models of the sharing capability."""
