"""The allocator tuning keeps 1 MiB request buffers in the heap: measured as page faults in a
fresh interpreter (the setting is process-wide, so it is not applied to the test process)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource, sys
import numpy as np
from gateway.allocator import keep_request_buffers_in_heap
if sys.argv[1] == "tuned":
    assert keep_request_buffers_in_heap()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # what a float32 299x299 request allocates: the batch and its bytes
    batch = np.ones((1, 299, 299, 3), dtype=np.float32)
    data = batch.tobytes()
    del batch, data
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout.strip())


def test_tensor_sized_buffers_stop_faulting_in_fresh_pages():
    default, tuned = page_faults("default"), page_faults("tuned")
    # Default glibc: every 1 MiB buffer is a fresh mmap, ~256 faults each (~25,000 in all).
    assert default > 10_000
    # Tuned: the heap pages are faulted in once and reused.
    assert tuned < default / 5
