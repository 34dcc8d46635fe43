"""The sharing capability (see README and ../shared/PRODUCT.md)."""
