"""Process-wide allocator settings that keep a long-running server's memory flat.

glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), so the
ONNX and audio buffers of every synthesis end up inside malloc's heaps, where fragments of them
stay resident after they are freed: under a mixed load the worker grew ~125 MB a minute while the
memory in use stayed ~300 MB. A fixed threshold keeps large blocks in their own mappings, which go
back to the system the moment they are freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter; setting it also stops the dynamic adjustment
MMAP_THRESHOLD = 256 * 1024


@functools.cache
def return_large_blocks_promptly() -> bool:
    """Fix glibc's mmap threshold (once per process); False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        logger.warning("mallopt(M_MMAP_THRESHOLD) was refused; memory may grow under long mixed loads")
        return False
    return True
