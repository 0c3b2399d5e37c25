"""keras-serving gateway."""
