"""The market capability (see README and ../shared/PRODUCT.md)."""
