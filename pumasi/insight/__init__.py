"""The insight capability (see README and ../shared/PRODUCT.md)."""
