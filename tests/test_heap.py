"""samuel.heap: large CPU tensors reuse the malloc heap inside the context (no page faults on reuse), glibc's
defaults come back after it, and it is a no-op where it cannot apply. Speed is measured in nox -s bench."""

from __future__ import annotations

import resource

import pytest
import torch

from samuel import heap


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int] | tuple[str, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_settings_nest_and_the_defaults_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLibc()
    monkeypatch.setattr(heap, "_libc", [fake])
    with heap.heap_allocations() as applied:
        assert applied
        with heap.heap_allocations():
            pass
        assert fake.calls == [("mallopt", heap.M_MMAP_MAX, 0), ("mallopt", heap.M_TRIM_THRESHOLD,
                                                                   heap.HELD_TRIM_THRESHOLD)]
    assert fake.calls[2:] == [("mallopt", heap.M_MMAP_MAX, heap.DEFAULT_MMAP_MAX),
                              ("mallopt", heap.M_TRIM_THRESHOLD, heap.DEFAULT_TRIM_THRESHOLD), ("malloc_trim", 0)]
    with pytest.raises(RuntimeError), heap.heap_allocations():  # an error inside still restores
        raise RuntimeError("boom")
    assert fake.calls[-1] == ("malloc_trim", 0) and heap._depth == 0


def test_off_by_environment_or_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLibc()
    monkeypatch.setattr(heap, "_libc", [fake])
    monkeypatch.setenv("SAMUEL_HEAP_ALLOCATIONS", "0")
    with heap.heap_allocations() as applied:
        assert not applied
    monkeypatch.delenv("SAMUEL_HEAP_ALLOCATIONS")
    monkeypatch.setattr(heap, "_libc", [None])
    with heap.heap_allocations() as applied:
        assert not applied
    assert fake.calls == []


def _faults_of_second_cycle() -> int:
    for cycle in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        x = torch.empty(16 * 2**20)  # 64 MB: far above glibc's largest mmap threshold (32 MB)
        x.fill_(1.0)
        del x
        if cycle:
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    raise AssertionError


@pytest.mark.skipif(heap.glibc() is None, reason="glibc only")
def test_a_large_block_is_reused_without_page_faults_inside() -> None:
    outside = _faults_of_second_cycle()
    with heap.heap_allocations():
        inside = _faults_of_second_cycle()
    # outside: the block is mapped and faulted in again (16,384 pages of 4 KiB; fewer with transparent huge pages)
    assert inside < 1_000 and 10 * inside < outside
