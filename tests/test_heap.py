"""samuel.heap: large CPU tensors reuse the malloc heap inside the context (no page faults on reuse), glibc's
defaults come back after it, and it is a no-op where it cannot apply. Speed is measured in nox -s bench."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


# The tiny test VAE's encoder is 128 channels wide at audio rate, as the real one's first block: 64 latent frames
# make 67 MB activations in fp32. Run in a fresh interpreter, as samuel-eval and samuel generate run.
SECOND_ENCODE_FAULTS = """
import resource, torch
from samuel import heap
from samuel.codec import random_oobleck_codec

torch.set_num_threads(1)
codec = random_oobleck_codec(tiny=True)
audio = 0.3 * torch.randn(1, 2, 64 * 2048, generator=torch.Generator().manual_seed(0))
with heap.heap_allocations():  # one item's context, as Accompanist.accompany holds it
    codec.encode(audio)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    codec.encode(audio)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_encode_faults(enabled: str) -> int:
    run = subprocess.run([sys.executable, "-c", SECOND_ENCODE_FAULTS], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "SAMUEL_HEAP_ALLOCATIONS": enabled})
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(heap.glibc() is None, reason="glibc only")
def test_a_second_encode_reuses_the_heap_instead_of_faulting_pages_in() -> None:
    off, on = _second_encode_faults("0"), _second_encode_faults("1")
    # measured here: about 1,000,000 minor faults off, 33,000 on
    assert on * 10 < off, (off, on)
