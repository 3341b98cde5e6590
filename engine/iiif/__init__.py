"""IIIF: manifests and collections read (Presentation 2.1 and 3)."""
