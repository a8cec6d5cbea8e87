"""xdist's work stealing, cut at test-file boundaries (``pytest_xdist_make_scheduler`` in tests/conftest.py).

``--dist worksteal`` hands each worker a contiguous share of the collection and, when a worker runs dry,
moves the last half of another worker's queue to it. Both cuts fall wherever the count says: often in the
middle of a module whose module-scoped fixture is a federation of real ``ncc serve`` processes (10–20 s to
build). Both workers then built it — measured in one full run: 605 s of fixture set-up, of which whole
federations built twice or three times (e2e search, fuzz, federation). Here every cut is moved to the
nearest place where the test file changes. A queue that holds a single file is cut inside it only when
more than :data:`SPLIT_MIN` of its tests are left (a unit-test file of hundreds: an idle core is worse
than its fixtures built twice); the last few tests of a federation module stay where its federation is.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdist.scheduler.worksteal import MIN_PENDING, WorkStealingScheduling

#: A queue of one file is shared with an idle worker only when it holds more tests than this.
SPLIT_MIN = 20


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def boundary(files: Sequence[str], at: int, lo: int = 1) -> int:
    """The cut nearest ``at`` (the later one on a tie) in ``lo..len(files)-1`` where ``files[cut-1] !=
    files[cut]``; ``at`` itself when there is none (a single file)."""
    for distance in range(len(files)):
        for cut in (at + distance, at - distance):
            if lo <= cut < len(files) and files[cut - 1] != files[cut]:
                return cut
    return at


class FileStealing(WorkStealingScheduling):
    """:class:`WorkStealingScheduling` whose hand-outs and steals end at test-file boundaries."""

    def _files(self, indices: Sequence[int]) -> list[str]:
        assert self.collection is not None
        return [file_of(self.collection[i]) for i in indices]

    def check_schedule(self) -> None:
        nodes = [(node, pending) for node, pending in self.node2pending.items() if not node.shutting_down]

        def idle() -> list[object]:
            return [node for node, pending in nodes if len(pending) < MIN_PENDING]

        if not idle():
            return
        if self.pending:  # the collection at the start, or what a steal or a crashed worker gave back
            waiting = idle()
            for i, node in enumerate(waiting):
                share = len(self.pending) // (len(waiting) - i)
                if i < len(waiting) - 1:
                    share = boundary(self._files(self.pending), share)
                self._send_tests(node, share)  # type: ignore[arg-type]
            if not idle():
                return
        if self.steal_requested_from_node is not None:  # one steal at a time
            return
        victim, queue = max(nodes, key=lambda entry: len(entry[1]), default=(None, []))
        steal = min(len(queue) // 2, max(0, len(queue) - MIN_PENDING))
        start = len(queue)
        if steal > 0:
            files = self._files(queue)
            start = boundary(files, len(queue) - steal, lo=MIN_PENDING)
            if files[start - 1] == files[start] and len(queue) <= SPLIT_MIN:
                start = len(queue)  # the last tests of one module: not worth building its federation again
        if victim is None or start >= len(queue):
            for node in idle():  # nothing worth sharing: the idle workers finish
                node.shutdown()  # type: ignore[attr-defined]
            return
        victim.send_steal(queue[start:])
        self.steal_requested_from_node = victim
