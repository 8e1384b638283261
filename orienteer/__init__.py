"""Orienteer: find out why a vision-language model gets spatial questions wrong.

The import package is assembled from the repository's top-level folders:
``core/`` -> ``orienteer.core``, ``data/`` -> ``orienteer.data``,
``jobs/`` -> ``orienteer.jobs`` and ``tui/`` -> ``orienteer.tui``.
"""

__version__ = "0.1.0"
