"""The typer command line: ``main`` (the commands and the console script), ``common`` (what they share),
``jobs``, ``prompt`` and ``workspace`` (command groups), ``render`` (rich tables for the read commands)."""
