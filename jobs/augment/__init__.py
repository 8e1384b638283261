"""Data augmentation shared by the data job kinds (flip, hard-negatives): pure item and image transforms."""
