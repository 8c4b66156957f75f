"""A benchmark process's own peak resident memory.

Not `getrusage`'s `ru_maxrss`: Linux carries it across fork and exec, so a child reports its parent's peak when
that is higher (a variant started after seeding 33.7M flights in the parent showed the seed's peak). VmHWM
belongs to the process's own address space, which exec starts afresh.
"""

from __future__ import annotations

from pathlib import Path


def memory_mib(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident memory, in MiB; NaN where /proc has no such line."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
