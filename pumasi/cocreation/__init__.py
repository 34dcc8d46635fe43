"""The cocreation capability (see README and ../shared/PRODUCT.md)."""
