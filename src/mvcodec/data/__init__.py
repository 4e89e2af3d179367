"""Data: real sample clips fetched from PyPI packages (and, later, the procedural multi-view generator)."""
