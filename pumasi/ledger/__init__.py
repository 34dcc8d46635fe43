"""The ledger capability (see README and ../shared/PRODUCT.md)."""
