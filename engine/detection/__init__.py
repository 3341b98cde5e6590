"""Finding regions by description (Grounding DINO) across a collection: tiling, cached raw outputs,
re-filtering at new thresholds without the model, proposals with their provenance."""
