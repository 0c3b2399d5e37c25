"""Keep each request's tensor-sized buffers in the heap instead of fresh mmaps (glibc only).

A /predict request allocates several 0.25-1 MiB buffers: the decoded image, the float32 batch,
its bytes, the TensorProto, the serialized request. glibc serves anything above its mmap
threshold (128 KiB at start) with a new mmap, which the kernel page-faults and zeroes on every
request and unmaps on free. glibc raises the threshold by itself only after the process frees a
bigger mmapped block, which a gateway that decodes photos at reduced scale (JPEG draft) never
does. bench/ measured the dataset-JPEG path at ~8 ms of gateway CPU per request with the default
and ~5.5 ms with these settings, for ~30 MB more RSS. On other C libraries (musl, macOS) this
does nothing.

The threshold stays at 4 MiB, above every per-request buffer of a photo (a phone photo is
decoded at 1/8 scale) and below the 16 MiB blocks Pillow keeps the pixels of a big image in:
those come from mmap and go back to the system when freed. In the heap, each decode thread's
malloc arena kept the blocks of the biggest image it had decoded (a 7000x7000 PNG: ~190 MB,
times THREADS); tests/reliability/test_faults.py measures it.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
# With a fixed mmap threshold glibc stops adapting the trim threshold too; keep freed heap
# memory around instead of returning (and re-faulting) it after every request.
TRIM_THRESHOLD = 64 * 1024 * 1024


def keep_request_buffers_in_heap() -> bool:
    """Set glibc's mmap and trim thresholds; True if the C library accepted both."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
