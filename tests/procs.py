"""Process helpers for the tests of worker processes."""

from __future__ import annotations

import os


def children(pid: int) -> list[int]:
    """PIDs of the live (not zombie) direct children of `pid`, sorted (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)
