"""The job runtime and job kinds (later issues)."""
