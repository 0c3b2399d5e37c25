"""The two model versions the cluster tier rolls between.

Version 2 is the demo model with its logits layer scaled by 0.5, exported the same way: the same
signature (a rollout between exports with different input signatures is another matter, see
docs/operations.md), different bytes and different scores (half of version 1's), so every
answer tells which version served it."""

from __future__ import annotations

LOGIT_SCALE = {1: 1.0, 2: 0.5}

# Run with the project's Python (TensorFlow/Keras): python -c HALVE_LOGITS <in.keras> <out.keras>
HALVE_LOGITS = f"""
import sys, keras
model = keras.models.load_model(sys.argv[1])
layer = model.get_layer("logits")
layer.set_weights([w * {LOGIT_SCALE[2]} for w in layer.get_weights()])
model.save(sys.argv[2])
"""
