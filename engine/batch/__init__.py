"""Batches of pages through a model: here, or on a Ray cluster (``marginalia batch``)."""
