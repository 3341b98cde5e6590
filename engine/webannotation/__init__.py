"""W3C Web Annotations: shapes given to and taken from IIIF viewers and annotation tools."""
