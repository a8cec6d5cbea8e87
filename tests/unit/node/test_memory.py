"""The allocator policy of ``ncc serve`` (node.memory): glibc's mmap threshold fixed, or left dynamic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node import memory
from node.config import ConfigError, load_settings

# Run in a child: mallopt changes the whole process's allocator. It frees a 1 MiB block (served by
# mmap at glibc's initial 128 KiB threshold) and allocates another: with the dynamic threshold the
# free raised the threshold above 1 MiB and the second block comes from the heap; with the threshold
# fixed it gets its own mapping again. mallinfo2().hblks counts the blocks served by mmap.
PROBE = r"""
import ctypes, json, sys
from node import memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
fixed = memory.fix_mmap_threshold(int(sys.argv[1]))
first = libc.malloc(1 << 20)
mapped_first = libc.mallinfo2().hblks
libc.free(first)
second = libc.malloc(1 << 20)
mapped_second = libc.mallinfo2().hblks
libc.free(second)
print(json.dumps({"fixed": fixed, "first": mapped_first, "second": mapped_second}))
"""


def probe(kib: int) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(kib)], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def glibc_with_mallinfo2() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 - glibc ≥ 2.33
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not glibc_with_mallinfo2(), reason="the probe reads glibc's mallinfo2")
def test_a_fixed_threshold_keeps_large_blocks_in_their_own_mappings() -> None:
    dynamic, fixed = probe(0), probe(128)
    assert dynamic == {"fixed": False, "first": dynamic["first"], "second": dynamic["first"] - 1}, dynamic
    assert fixed == {"fixed": True, "first": fixed["first"], "second": fixed["first"]}, fixed


@pytest.mark.parametrize("kib", [-1, memory.MMAP_THRESHOLD_MAX_KIB + 1])
def test_a_threshold_glibc_would_refuse_is_refused(kib: int) -> None:
    with pytest.raises(ValueError, match="between 0 and"):
        memory.fix_mmap_threshold(kib)


def test_the_setting_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('role = "hub"\n')
    assert load_settings(tmp_path, env={}).malloc_mmap_threshold_kib == 8192
    assert load_settings(tmp_path, env={"NCC_MALLOC_MMAP_THRESHOLD_KIB": "0"}).malloc_mmap_threshold_kib == 0
    with pytest.raises(ConfigError, match="malloc_mmap_threshold_kib"):
        load_settings(tmp_path, env={"NCC_MALLOC_MMAP_THRESHOLD_KIB": "40000"})


async def test_idle_trim_trims_once_a_burst_of_touches_has_paused() -> None:
    import asyncio

    trims: list[float] = []
    loop = asyncio.get_running_loop()
    idle = memory.IdleTrim(idle_s=0.05, trim=lambda: trims.append(loop.time()))
    for _ in range(8):  # a burst of searches, 20 ms apart: never idle for 50 ms
        idle.touch()
        last = loop.time()
        await asyncio.sleep(0.02)
    assert trims == [], "trimmed during the burst"
    await asyncio.sleep(0.12)
    assert len(trims) == 1 and trims[0] - last >= 0.05  # once, idle_s after the last touch
    idle.touch()  # the next burst arms it again
    await asyncio.sleep(0.12)
    assert len(trims) == 2


def test_idle_trim_used_from_a_new_loop_arms_again() -> None:
    """A timer left on a loop that ended must not keep the service from trimming on the next one."""
    import asyncio

    trims: list[int] = []
    idle = memory.IdleTrim(idle_s=0.02, trim=lambda: trims.append(1))

    async def touch_and_leave() -> None:
        idle.touch()  # the loop ends before the timer fires

    async def touch_and_wait() -> None:
        idle.touch()
        await asyncio.sleep(0.08)

    asyncio.run(touch_and_leave())
    asyncio.run(touch_and_wait())
    assert trims == [1]
