"""What stands out on a page: DINO's attention maps, thresholds on them, and proposals from them (no Qt)."""
