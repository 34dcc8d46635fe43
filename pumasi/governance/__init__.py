"""The governance capability (see README and ../shared/PRODUCT.md)."""
