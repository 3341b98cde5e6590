"""Model tools as plug-ins: each one a module behind the seam in ``seam.py``, listed in ``catalogue.py``."""
