"""The model runtime: catalogue, model store, downloads (adapters and devices follow)."""
