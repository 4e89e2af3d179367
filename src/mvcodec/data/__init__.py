"""Data: real sample clips from PyPI packages (``samples``), the procedural multi-view generator (``synthetic``,
``textures``), readers of the standard training layouts (``layouts``) and the dataset factory the training tasks
call (``datasets.build_dataset``).  Import the submodules directly: ``datasets`` imports torch, ``samples`` does
not need it.
"""
