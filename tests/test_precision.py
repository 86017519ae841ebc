"""The precision a model runs in: "auto" resolved per device, and a faster precision's distance from fp32 measured
beside its time (Generator.precision_distance, bench.timing.record_precision_distance; Table II's cell is in
tests/snapshots/table2.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cpu_kinds import needs_bf16_kernels
from tiny_generators import one_torch_thread, write_signal

from baselines import registry
from baselines.base import GenerationRequest, PrecisionDistance, WeightsChoice, snr_db
from samuel.generate import cpu_has_native_bf16, resolve_precision

ZEN4_FLAGS = "flags\t\t: fpu vme sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS_FLAGS = "flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile amx_int8\n"
SKYLAKE_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    assert cpu_has_native_bf16(ZEN4_FLAGS) and cpu_has_native_bf16(SAPPHIRE_RAPIDS_FLAGS)
    assert not cpu_has_native_bf16(SKYLAKE_FLAGS) and not cpu_has_native_bf16("")


def test_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import samuel.generate

    assert resolve_precision("auto", "cpu") == "fp32"  # conftest pins "no native bf16"
    monkeypatch.setattr(samuel.generate, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision("int8", "cpu")
    gen = registry.create("samuel", WeightsChoice("random"), preset="tiny")
    assert gen.precision() == "bf16 (U-Net in bf16, VAE in bfloat16)"


def test_bf16_asked_for_where_onednn_has_no_bf16_kernels_warns_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AVX2-only CPU runs bf16 on torch's reference loops (75-190x slower than fp32): an explicit bf16 still
    runs, with a warning that says why it will be slow; auto never picks it there; a GPU is not concerned."""
    import warnings

    import torch

    import samuel.generate
    import samuel.train

    why = "oneDNN has no bf16 kernels on this CPU (torch sees AVX2; ...)"
    monkeypatch.setattr(samuel.generate, "cpu_bf16_kernels_missing", lambda: why)
    with pytest.warns(UserWarning, match=r"precision bf16 asked for on this CPU: oneDNN has no bf16 kernels"):
        assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.warns(UserWarning, match=r"bf16 training asked for on this CPU: oneDNN has no bf16 kernels"):
        assert samuel.train.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("fp32", "cpu") == "fp32"
        assert resolve_precision("bf16", "cuda") == "bf16"
        monkeypatch.setattr(samuel.generate, "cpu_bf16_kernels_missing", lambda: None)
        assert resolve_precision("bf16", "cpu") == "bf16"


def test_snr_db_golden() -> None:
    ref = np.array([3.0, 4.0])
    assert snr_db(ref, ref) == float("inf")
    assert snr_db(ref, ref + np.array([0.25, 0.0])) == pytest.approx(10 * np.log10(25 / 0.0625))


def _vocal(tmp_path: Path) -> GenerationRequest:
    path = write_signal(tmp_path / "v.wav", 2.0)
    return GenerationRequest("0001", 1, 2.0, "", vocal_path=path)


@needs_bf16_kernels
def test_samuel_bf16_distance_from_fp32_stage_by_stage(tmp_path: Path) -> None:
    request = _vocal(tmp_path)
    with one_torch_thread():
        fast = registry.create("samuel", WeightsChoice("random"), preset="tiny", precision="bf16", steps=2)
        distance = fast.precision_distance(request)
        exact = registry.create("samuel", WeightsChoice("random"), preset="tiny", precision="fp32", steps=2)
        assert exact.precision_distance(request) is None
    assert isinstance(distance, PrecisionDistance)
    assert list(distance.stages) == ["VAE encode", "U-Net (guided)", "VAE decode"]
    # bf16 has 8 significant bits: 20-60 dB per stage, never exact, never noise
    assert all(20.0 < v < 70.0 for v in distance.stages.values()), distance.stages
    assert "item '0001'" in distance.on and distance.label().startswith("vs fp32, SNR: VAE encode ")
    assert distance.to_dict()["snr_db"].keys() == distance.stages.keys()


@needs_bf16_kernels
def test_the_timing_pass_records_the_distance_or_why_not(tmp_path: Path) -> None:
    from bench.timing import time_model

    request = _vocal(tmp_path)
    with one_torch_thread():
        gen = registry.create("samuel", WeightsChoice("random"), preset="tiny", precision="bf16", steps=2)
        result = time_model(gen, [request], mode="full", log=lambda s: None)
    assert result.status == "measured"
    assert result.setup["fp32_distance"].startswith("vs fp32, SNR: VAE encode ")
    assert result.setup["fp32_distance_db"]["compared_with"] == "fp32"

    class Failing(type(gen)):  # a comparison that fails is recorded; the time stands
        def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
            raise RuntimeError("no fp32 codec here")

    with one_torch_thread():
        failing = Failing(WeightsChoice("random"), preset="tiny", precision="bf16", steps=2)
        result = time_model(failing, [request], mode="full", log=lambda s: None)
    assert result.status == "measured" and result.setup["fp32_distance"] == (
        "not measured: RuntimeError: no fp32 codec here")


def test_the_bf16_twin_keeps_the_original_and_the_tables_in_fp32(tiny_model) -> None:
    import torch

    from samuel.guidance import guided_model_fn
    from samuel.model import low_precision_twin

    twin = low_precision_twin(tiny_model, torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in twin.parameters())
    assert all(p.dtype == torch.float32 for p in tiny_model.parameters())  # the original is untouched
    # the schedule (float64) and the RoPE tables (float32) keep their precision
    assert [b.dtype for b in twin.buffers()] == [b.dtype for b in tiny_model.buffers()]
    assert twin.alpha_bar.dtype == torch.float64 and twin.rope_cos.dtype == torch.float32
    gen = torch.Generator().manual_seed(0)
    vocal, x_t = (torch.randn(2, 64, 64, generator=gen) for _ in range(2))
    t = torch.tensor([100, 700])
    with torch.inference_mode():
        exact = guided_model_fn(tiny_model, vocal, 3.0)(x_t, t)
        fast = guided_model_fn(tiny_model, vocal, 3.0, denoiser=twin)(x_t, t)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape  # the sampler's arithmetic stays fp32
    assert 25.0 < snr_db(exact.numpy(), fast.numpy()) < 70.0  # bf16's 8 significant bits: close, never exact


def test_an_accompanist_builds_its_bf16_twin_once(tiny_model) -> None:
    import torch

    from samuel.generate import Accompanist

    acc = Accompanist(tiny_model, None, None, checkpoint_info={}, precision="bf16")  # type: ignore[arg-type]
    assert acc.twin(torch.bfloat16) is acc.twin(torch.bfloat16)
    vocal = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fast = acc.model_fn(vocal, 3.0)(torch.zeros(1, 64, 64), torch.tensor([400]))
        exact = acc.model_fn(vocal, 3.0, precision="fp32")(torch.zeros(1, 64, 64), torch.tensor([400]))
    assert 25.0 < snr_db(exact.numpy(), fast.numpy()) < 70.0
