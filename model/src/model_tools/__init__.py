"""keras-serving model tooling."""

# The signature `model convert` exports and `model serve` answers for a request that names none
# (as TF Serving does).
DEFAULT_SIGNATURE = "serving_default"
