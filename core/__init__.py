"""Pure analysis: direction taxonomy, answer parsing, statistics.

Standard library only; nothing of the project is imported here.
"""
