"""Side panels: categories, the current page's annotations, and its metadata."""
