"""keras-serving model tooling."""
