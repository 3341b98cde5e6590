"""The image canvas: a zoomable, pannable page with editable annotation shapes."""
