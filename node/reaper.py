"""The watchdog of :mod:`node.processes`: kills the process groups of a launcher that ended.

Run as ``python -I -S node/reaper.py`` with a pipe on stdin whose write end only the launcher holds.
Lines: ``+PGID START`` registers a process group (START: its leader's start time from /proc, so a
number the kernel has since given to another process is never killed), ``-PGID`` unregisters it. At end
of file (the launcher ended, however it ended), every group still registered gets SIGKILL.

Standard library only, no imports from the project: it must start fast and work whatever state the
launcher left behind.
"""

import os
import signal
import sys


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def main() -> None:
    # a Ctrl-C or a SIGTERM meant for the launcher's terminal or group must not end the watchdog first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: dict[int, str | None] = {}
    for line in sys.stdin:
        op, _, rest = line.strip().partition(" ")
        try:
            pgid = int(op[1:])
        except ValueError:
            continue
        if op.startswith("+"):
            groups[pgid] = rest or None
        elif op.startswith("-"):
            groups.pop(pgid, None)
    for pgid, started in groups.items():
        now = start_time(pgid)
        if started and now is not None and now != started:
            continue  # the leader's number now belongs to another process
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
