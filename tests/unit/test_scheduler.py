"""tests/scheduler.py's cut: the nearest place where the test file changes."""

from __future__ import annotations

from tests.scheduler import boundary, file_of


def test_the_cut_moves_to_the_nearest_file_boundary() -> None:
    files = ["a", "a", "a", "b", "b", "c", "c", "c", "c", "c"]
    assert boundary(files, 5) == 5  # already between b and c
    assert boundary(files, 4) == 5  # b starts one before, c one after: a tie goes to the later
    assert boundary(files, 7) == 5
    assert boundary(files, 1) == 3
    assert boundary(["a"] * 6, 3) == 3  # one file: cut where the count says


def test_the_cut_keeps_the_lowest_position_asked_for() -> None:
    files = ["a", "b", "b", "b", "b", "c"]
    assert boundary(files, 2, lo=2) == 5  # the boundary at 1 would leave the victim too little
    assert boundary(files, 3) == 5  # 1 and 5 are both two away: the later


def test_file_of_a_node_id() -> None:
    assert file_of("tests/e2e/test_federation.py::test_x[sqlite]") == "tests/e2e/test_federation.py"
