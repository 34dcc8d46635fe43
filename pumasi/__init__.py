"""pumasi: a community's own platform for sharing what it has and making things together."""

__version__ = "0.1.0"
