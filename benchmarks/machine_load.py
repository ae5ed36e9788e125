"""What else the machine is doing while a benchmark runs, and how many cores a benchmark may use.

Timings taken while other work competes for the cores measure that competition as much as the code: every
benchmark prints the load average as it starts and as it ends, with a warning when it exceeds the cores.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), the most threads it should use in all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def report_load(when: str) -> list[float]:
    """Print the 1/5/15-minute load averages, with a warning when the 1-minute one exceeds the machine's cores
    (the figures are then not trustworthy); returns them."""
    load = [round(x, 2) for x in os.getloadavg()]
    cores = os.cpu_count() or 1  # the load average counts runnable tasks over the whole machine
    print(f"[load] {when}: load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min), {cores} cores",
          flush=True)
    if load[0] > cores:
        print(f"[load] WARNING: the load average {load[0]:.2f} exceeds the {cores} cores: other work competes for them, "
              "and the timings are not trustworthy", flush=True)
    return load
