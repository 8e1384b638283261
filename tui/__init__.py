"""The command-line interface and (later) the Textual app."""
