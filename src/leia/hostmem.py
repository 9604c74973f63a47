"""Host memory: keep the CPU's freed activation buffers for reuse.

glibc hands freed blocks above its mmap threshold back to the kernel, and PyTorch's CPU allocator
does not cache them, so every CPU training step faults its activations back in, page by page, and
zeroes them: half of the CPU time of `experiment=fast_cifar10` was spent in the kernel on 2 cores.
Fixing the threshold at its largest value (32 MiB on 64-bit glibc; it also stops glibc's dynamic
threshold) keeps those blocks in the heap: the fast net's training step went from 267 to 333 img/s
at batch 512 (a standalone fastnet training step on random input, measured once by hand; not a bench script). Only glibc on Linux; a
MALLOC_MMAP_THRESHOLD_ set in the environment is the user's and wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LARGEST = 32 * 2**20
TRIM = 256 * 2**20  # fixing the mmap threshold also fixes the trim threshold at 128 KiB: raise it too


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold to its largest value (and the trim threshold to 256 MiB); True
    when it was set here."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
