"""Reusable widgets: each receives attributes and posts messages; styling in DEFAULT_CSS."""
