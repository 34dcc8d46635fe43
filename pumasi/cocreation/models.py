"""Database models of the cocreation capability."""
