"""What the benchmarks read off the machine itself."""

from __future__ import annotations

import os


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (any process, anyone's)."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
