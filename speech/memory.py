"""Process-wide allocator settings that keep a long-running server's memory flat.

glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), so the
ONNX and audio buffers of every synthesis end up inside malloc's heaps, where fragments of them
stay resident after they are freed: under a mixed load the worker grew ~125 MB a minute while the
memory in use stayed ~300 MB. A fixed threshold keeps large blocks in their own mappings, which go
back to the system the moment they are freed. Smaller blocks freed among long-lived ones leave
whole free pages inside the heaps of a server's many threads; ``give_back_free_pages`` returns them.
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
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc's, absent from other C libraries)
    except (OSError, AttributeError, TypeError):
        return None
    return libc


@functools.cache
def return_large_blocks_promptly() -> bool:
    """Fix glibc's mmap threshold (once per process); False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    if not libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        logger.warning("mallopt(M_MMAP_THRESHOLD) was refused; memory may grow under long mixed loads")
        return False
    return True


def give_back_free_pages() -> bool:
    """Return the free pages inside every malloc heap to the system (a few ms); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
