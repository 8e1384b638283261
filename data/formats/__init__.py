"""Readers for benchmark and prediction files, one module per family of formats."""
