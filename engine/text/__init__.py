"""Text on a page with Hi-SAM: stroke masks, and words in lines in paragraphs (no Qt)."""
