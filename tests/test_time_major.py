"""samuel.time_major: SAMUeL run time-major, every convolution one GEMM, against the channel-major reference.

Layer by layer and for the whole network (forward, encode_condition, denoise with either condition layout) in
float64, where the two must agree to rounding; in bf16 its distance from fp32 must be the twin's; and the compiled
executor that `load(compile=True)` gives the bf16 path must return what the eager one does."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.base import snr_db
from samuel import SAMUeL, SAMUeLConfig
from samuel.model import fill_zero_init_layers, low_precision_twin
from samuel.time_major import (
    TimeMajorSAMUeL,
    group_norm_time_major,
    pack_conv,
    pack_transposed_conv,
    unfold3,
)

F64 = torch.float64


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize(("kernel", "stride", "frames"), [(3, 1, 16), (3, 1, 1), (3, 2, 16), (3, 2, 10), (1, 1, 7)])
def test_a_convolution_is_one_gemm_over_unfolded_frames(kernel: int, stride: int, frames: int) -> None:
    x, w, b = _randn(2, 5, frames), _randn(4, 5, kernel, seed=1), _randn(4, seed=2)
    expected = F.conv1d(x, w, b, stride=stride, padding=kernel // 2)
    rows = unfold3(x.transpose(1, 2).contiguous(), stride) if kernel == 3 else x.transpose(1, 2).reshape(-1, 5)
    got = torch.addmm(b, rows, pack_conv(w)).view(2, -1, 4).transpose(1, 2)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_the_transposed_convolution_is_one_gemm_into_frame_pairs() -> None:
    x, w, b = _randn(2, 6, 9), _randn(6, 3, 4, seed=1), _randn(3, seed=2)
    expected = F.conv_transpose1d(x, w, b, stride=2, padding=1)  # (2, 3, 18)
    got = torch.addmm(b.repeat(2), unfold3(x.transpose(1, 2).contiguous()), pack_transposed_conv(w))
    torch.testing.assert_close(got.view(2, 18, 3).transpose(1, 2), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="kernel-4"):
        pack_transposed_conv(_randn(6, 3, 3))


def test_group_norm_time_major_equals_torch_on_the_channel_major_tensor() -> None:
    norm = nn.GroupNorm(4, 16).double()
    with torch.no_grad():
        norm.weight.copy_(_randn(16, seed=3))
        norm.bias.copy_(_randn(16, seed=4))
    x = _randn(3, 11, 16)  # (B, T, C)
    got = group_norm_time_major(x, norm)
    torch.testing.assert_close(got, norm(x.transpose(1, 2)).transpose(1, 2), rtol=0, atol=1e-12)
    assert got.shape == x.shape


CONFIGS = {
    "paper": (SAMUeLConfig(), 2, 1024),
    # cross-attention at full rate and at level 1 too, the zero null condition, the authors' mixing, odd batch
    "other": (SAMUeLConfig(channels=(32, 64, 64, 128), cross_attention_levels=(0, 1, 3), null_condition="zero",
                           mixing="authors-code", num_frames=40), 3, 40),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def float64_pair(request) -> tuple[SAMUeL, TimeMajorSAMUeL, int, int]:
    config, batch, frames = CONFIGS[request.param]
    torch.manual_seed(0)
    model = fill_zero_init_layers(SAMUeL(config)).eval().double()
    return model, TimeMajorSAMUeL(model), batch, frames


def test_time_major_computes_the_same_network_in_float64(float64_pair) -> None:
    model, fast, batch, frames = float64_pair
    x, vocal = _randn(batch, 64, frames, seed=5), _randn(batch, 64, frames, seed=6)
    t = torch.randint(0, 800, (batch,), generator=torch.Generator().manual_seed(7))
    keep = torch.arange(batch) % 2 == 0  # some samples take the null condition
    with torch.inference_mode():
        expected = model(x, t, vocal, keep_condition=keep)
        torch.testing.assert_close(fast(x, t, vocal, keep_condition=keep), expected, rtol=0, atol=1e-10)
        reference_condition = model.encode_condition(vocal)
        condition = fast.encode_condition(vocal)
        assert condition.layout == "time-major" and reference_condition.layout == "channel-major"
        for ours, theirs in zip(condition.films, reference_condition.films, strict=True):
            torch.testing.assert_close(ours.transpose(1, 2), theirs, rtol=0, atol=1e-10)
        for ours_kv, theirs_kv in zip(condition.contexts, reference_condition.contexts, strict=True):
            for ours, theirs in zip(ours_kv, theirs_kv, strict=True):
                torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)
        expected = model.denoise(x, t, reference_condition)
        # either layout of condition: the channel-major one is converted once and reused
        for cond in (condition, reference_condition, reference_condition):
            torch.testing.assert_close(fast.denoise(x, t, cond), expected, rtol=0, atol=1e-10)
        null = fast(x, t, None)
        torch.testing.assert_close(null, model(x, t, None), rtol=0, atol=1e-10)


def test_bad_inputs_are_refused_as_the_reference_refuses_them(tiny_model) -> None:
    fast = TimeMajorSAMUeL(tiny_model)
    x, t = torch.randn(1, 64, 16), torch.tensor([5])
    with torch.inference_mode():
        condition = fast.encode_condition(torch.randn(1, 64, 16))
        with pytest.raises(ValueError, match="time-major"):
            tiny_model.denoise(x, t, condition)  # a time-major condition is not the reference's
        with pytest.raises(ValueError, match="multiple of"):
            fast(torch.randn(1, 64, 12), t, None)
        with pytest.raises(ValueError, match="t must lie"):
            fast(x, torch.tensor([900]), None)
        with pytest.raises(ValueError, match="batch"):
            fast.denoise(torch.randn(2, 64, 16), torch.tensor([5, 6]), condition)
    odd = copy.deepcopy(tiny_model)
    odd.stem = nn.Conv1d(64, odd.stem.out_channels, 5, padding=2)
    with pytest.raises(ValueError, match="stem: no time-major form for kernel 5"):
        TimeMajorSAMUeL(odd)


def test_bf16_time_major_is_as_close_to_fp32_as_the_twin(default_model) -> None:
    twin = low_precision_twin(default_model, torch.bfloat16)
    fast = TimeMajorSAMUeL(twin)
    gen = torch.Generator().manual_seed(8)
    x, vocal = torch.randn(2, 64, 256, generator=gen), torch.randn(2, 64, 256, generator=gen)
    t = torch.tensor([300, 700])
    with torch.inference_mode():
        exact = default_model(x, t, vocal).numpy()
        ours = snr_db(exact, fast(x.bfloat16(), t, vocal.bfloat16()).float().numpy())
        twins = snr_db(exact, twin(x.bfloat16(), t, vocal.bfloat16()).float().numpy())
    assert fast.dtype == torch.bfloat16
    assert 30.0 < ours < 70.0 and abs(ours - twins) < 3.0, (ours, twins)  # bf16: close to fp32, never exact


@pytest.mark.slow
def test_compile_runs_the_bf16_twin_time_major_and_finite(tiny_model) -> None:
    """`Accompanist.load(compile=True)` then --precision bf16: the compiled time-major twin. (Compiled
    channel-major, inductor's bf16 graph returned NaN on torch 2.13: docs/benchmarks.md, "Speed, fifth pass".)"""
    from samuel.generate import Accompanist

    model = copy.deepcopy(tiny_model)
    model.denoise = torch.compile(model.denoise)  # what load(compile=True) does
    acc = Accompanist(model, None, None, checkpoint_info={}, precision="bf16")  # type: ignore[arg-type]
    twin = acc.twin(torch.bfloat16)
    assert isinstance(twin, TimeMajorSAMUeL) and "denoise_time_major" in vars(twin)
    assert acc.unet_form() == {"compiled": True, "layout": "time-major (samuel.time_major)"}
    gen = torch.Generator().manual_seed(9)
    vocal, x_t = torch.randn(1, 64, 64, generator=gen), torch.randn(1, 64, 64, generator=gen)
    with torch.inference_mode():
        compiled = acc.model_fn(vocal, 3.0)(x_t, torch.tensor([400]))
        eager = Accompanist(tiny_model, None, None, checkpoint_info={}, precision="bf16")  # type: ignore[arg-type]
        assert eager.unet_form() == {"compiled": False, "layout": "channel-major"}
        uncompiled = eager.model_fn(vocal, 3.0)(x_t, torch.tensor([400]))
        exact = eager.model_fn(vocal, 3.0, precision="fp32")(x_t, torch.tensor([400]))
        # a new clip's condition is converted outside the compiled step: no recompile (counted by dynamo)
        from torch._dynamo.utils import counters

        graphs = counters["stats"]["unique_graphs"]
        assert graphs > 0  # the step above was compiled, so a recompile would show here
        other_vocal = torch.randn(1, 64, 64, generator=gen)
        acc.model_fn(other_vocal, 3.0)(x_t, torch.tensor([300]))
        assert counters["stats"]["unique_graphs"] == graphs
    assert torch.isfinite(compiled).all()
    assert 25.0 < snr_db(exact.numpy(), compiled.numpy()) < 70.0
    assert snr_db(uncompiled.numpy(), compiled.numpy()) > 25.0


@pytest.mark.slow
def test_compiled_sampling_pads_a_smaller_batch_rather_than_compile_again(tiny_model) -> None:
    """A folder's last, partial batch: under `load(compile=True)` it is sampled padded to a batch size already
    compiled (silent rows, dropped), so dynamo compiles nothing new, and each real row comes out as it would
    beside other chunks. Without compile nothing is padded."""
    from torch._dynamo.utils import counters

    from samuel.generate import Accompanist, GenerateSettings

    model = copy.deepcopy(tiny_model)
    model.denoise = torch.compile(model.denoise)  # what load(compile=True) does
    acc = Accompanist(model, None, None, checkpoint_info={}, precision="bf16")  # type: ignore[arg-type]
    settings = GenerateSettings(steps=2, batch_size=3)
    vocal = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(10))
    full = acc.sample_latents(vocal, [1, 2, 3], settings)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    last = acc.sample_latents(vocal[1:], [2, 3], settings)  # a partial batch of 2
    assert counters["stats"]["unique_graphs"] == graphs
    assert last.shape == (2, 64, 64)
    torch.testing.assert_close(last, full[1:], rtol=1e-2, atol=1e-2)  # bf16 steps, silent neighbours
    assert acc._sampled_batches == {3}
    eager = Accompanist(tiny_model, None, None, checkpoint_info={}, precision="bf16")  # type: ignore[arg-type]
    assert [eager._compiled_batch(n) for n in (3, 2)] == [3, 2]
