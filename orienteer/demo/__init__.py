"""The embedded demo: a synthetic ViewSpatial-shaped benchmark, its rendered images and runs.

It sits above ``orienteer.data`` (it builds a workspace through the real importers) and below
``orienteer.tui`` (``orienteer demo`` opens it); nothing in ``core``, ``data`` or ``jobs`` imports it.
"""
