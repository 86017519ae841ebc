"""The codec's fast paths (issue 15) compute what the plain VAE computes: the fused Snake against diffusers'
Snake1d, the channels-last and polyphase convolutions against torch's Conv1d and ConvTranspose1d, tiling against
one untiled call (its margin against the receptive field measured by perturbation), and the tile arithmetic. Speed
itself is measured in tests/benchmarks/test_bench_speed.py, never here."""

from __future__ import annotations

import pytest
import torch
from cpu_kinds import needs_bf16_kernels
from diffusers.models.autoencoders.autoencoder_oobleck import Snake1d

from baselines.base import snr_db
from samuel.codec import (
    HOP_LENGTH,
    TILE_MARGIN_FRAMES,
    TINY_OOBLECK_CONFIG,
    FusedSnake,
    OobleckCodec,
    fuse_snake_,
    oobleck_class,
    randomise_snake_,
    tile_spans,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_vae(seed: int = 0, dtype: torch.dtype = torch.float32):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = randomise_snake_(oobleck_class()(**TINY_OOBLECK_CONFIG), std=0.3)
    return vae.to(dtype).eval().requires_grad_(False)


def _snake1d(channels: int) -> Snake1d:
    plain = Snake1d(channels)
    with torch.no_grad():
        plain.alpha.normal_(0, 0.5)
        plain.beta.normal_(0, 0.5)
    return plain


def test_fused_snake_equals_snake1d_and_keeps_its_parameters() -> None:
    plain = _snake1d(8)
    fused = FusedSnake(plain.alpha, plain.beta)
    x = torch.randn(3, 8, 500, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-6, atol=1e-6)
    # with autograd (no in-place step): the same values and gradients
    xg = x.clone().requires_grad_(True)
    fused(xg).sum().backward()
    expected = x.clone().requires_grad_(True)
    plain(expected).sum().backward()
    torch.testing.assert_close(xg.grad, expected.grad, rtol=1e-5, atol=1e-6)
    vae = _tiny_vae()
    keys = list(vae.state_dict())
    assert fuse_snake_(fuse_snake_(vae)) is vae
    assert list(vae.state_dict()) == keys  # same names: key maps and checksums hold
    assert not any(isinstance(m, Snake1d) for m in vae.modules())
    assert sum(isinstance(m, FusedSnake) for m in vae.modules()) > 10


def test_the_compiled_snake_equals_the_eager_one_or_falls_back() -> None:
    """One torch.compile'd kernel where inductor can build it (it needs a C++ compiler), else the eager form with a
    warning: the same values either way."""
    from samuel.codec import compiled_snake

    plain = _snake1d(6)
    fused = FusedSnake(plain.alpha, plain.beta)
    x = torch.randn(2, 6, 300, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        eager = fused(x)
        fused.compiled = True
        torch.testing.assert_close(fused(x), eager, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused(x[:1, :, :77]), eager[:1, :, :77], rtol=1e-5, atol=1e-5)  # other shapes
    kernel = compiled_snake()
    assert kernel is None or callable(kernel)


def test_tile_spans_cover_once_with_clipped_context() -> None:
    assert tile_spans(10, 4, 2) == [(0, 0, 4, 6), (2, 4, 8, 10), (6, 8, 10, 10)]
    assert tile_spans(3, 8, 10) == [(0, 0, 3, 3)]
    for frames, tile, margin in [(1, 1, 0), (1024, 128, 10), (1000, 128, 10), (129, 128, 10)]:
        spans = tile_spans(frames, tile, margin)
        kept = [f for _, start, stop, _ in spans for f in range(start, stop)]
        assert kept == list(range(frames))
        assert all(lo == max(0, s - margin) and hi == min(frames, e + margin) for lo, s, e, hi in spans)
    with pytest.raises(ValueError):
        tile_spans(0, 4, 1)


def test_the_margin_covers_the_receptive_field_both_ways() -> None:
    """Perturb one latent frame (one audio sample) of a float64 VAE and see how far the change reaches: it must stay
    inside TILE_MARGIN_FRAMES, or tiles would miss context. The tiny VAE has the real kernels, dilations and
    strides (only its widths differ), so its reach is the full-size one."""
    vae = _tiny_vae(dtype=torch.float64)
    frames = 2 * TILE_MARGIN_FRAMES + 3
    mid = frames // 2
    with torch.inference_mode():
        z = torch.randn(1, 64, frames, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        moved = z.clone()
        moved[..., mid] += 1.0
        change = (vae.decode(moved).sample - vae.decode(z).sample).abs().sum(1)[0]
        hit = torch.nonzero(change > 0).flatten()
        reach = max(mid - hit.min().item() / HOP_LENGTH, (hit.max().item() + 1) / HOP_LENGTH - (mid + 1))
        assert 5 < reach <= TILE_MARGIN_FRAMES  # 9.27 frames
        audio = 0.1 * torch.randn(1, 2, frames * HOP_LENGTH, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(2))
        pushed = audio.clone()
        pushed[..., mid * HOP_LENGTH] += 1.0
        changed = (vae.encode(pushed).latent_dist.mean - vae.encode(audio).latent_dist.mean).abs().sum(1)[0]
        hit = torch.nonzero(changed > 0).flatten()
        assert 3 < max(mid - hit.min().item(), hit.max().item() - mid) <= TILE_MARGIN_FRAMES  # 8 frames


@pytest.mark.parametrize("tile", [7, 16])
def test_tiled_equals_untiled(tile: int) -> None:
    frames = 23  # 16: a tile, a remainder of 7, each with a clipped margin; 7: interior tiles with both margins
    whole = OobleckCodec(_tiny_vae(), "tiny", tile_frames=None)
    tiles = OobleckCodec(_tiny_vae(), "tiny", tile_frames=tile)
    audio = 0.3 * torch.randn(1, 2, frames * HOP_LENGTH, generator=torch.Generator().manual_seed(3))
    latents = whole.encode(audio)
    torch.testing.assert_close(tiles.encode(audio), latents, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tiles.decode(latents), whole.decode(latents), rtol=1e-5, atol=1e-6)
    assert tiles.provenance()["tile_frames"] == tile and whole.provenance()["tile_margin_frames"] is None
    with pytest.raises(ValueError, match="tile_frames"):
        OobleckCodec(_tiny_vae(), "tiny", tile_frames=0)


def _counting(codec: OobleckCodec) -> list[int]:
    """Record the input length (samples or frames) of every VAE call ``codec`` makes."""
    calls: list[int] = []
    for direction in ("encode", "decode"):
        real = getattr(codec.vae, direction)

        def counted(x, *args, _real=real, **kwargs):
            calls.append(x.shape[-1])
            return _real(x, *args, **kwargs)

        setattr(codec.vae, direction, counted)
    return calls


def test_a_chunk_padded_with_silence_encodes_its_silent_tiles_once_and_exactly() -> None:
    """A short input padded to a whole chunk: its silent tiles of one length run once, and the latents are the
    ones every tile run separately gives, bit for bit (the output of a zero input depends on its length alone)."""
    frames, tile = 64, 16  # 4 tiles: the first holds the sound, two interior silent ones, the clipped last one
    audio = torch.zeros(1, 2, frames * HOP_LENGTH)
    audio[..., : 5 * HOP_LENGTH] = 0.3 * torch.randn(1, 2, 5 * HOP_LENGTH, generator=torch.Generator().manual_seed(4))
    fast = OobleckCodec(_tiny_vae(), "tiny", tile_frames=tile)
    calls = _counting(fast)
    latents = fast.encode(audio)
    assert calls == [26 * HOP_LENGTH, 36 * HOP_LENGTH, 26 * HOP_LENGTH]  # sound; two silent tiles of 36 frames; last
    expected = []
    same = OobleckCodec(_tiny_vae(), "tiny", tile_frames=tile).vae  # the same layers, each tile run on its own
    with torch.inference_mode():
        for lo, start, stop, hi in tile_spans(frames, tile, TILE_MARGIN_FRAMES):
            out = same.encode(audio[..., lo * HOP_LENGTH: hi * HOP_LENGTH]).latent_dist.mean
            expected.append(out[..., start - lo: stop - lo])
    assert torch.equal(latents, torch.cat(expected, dim=-1))
    assert fast.encode(torch.zeros(1, 2, frames * HOP_LENGTH)).shape == (1, 64, frames)


def test_decode_keeps_only_the_wanted_frames_and_they_equal_a_whole_decode() -> None:
    frames, tile = 40, 8
    codec = OobleckCodec(_tiny_vae(), "tiny", tile_frames=tile)
    latents = torch.randn(3, 64, frames, generator=torch.Generator().manual_seed(5))
    whole = codec.decode(latents)
    calls = _counting(codec)
    part = codec.decode(latents, keep_frames=[9, 40, 1])
    assert len(calls) == 2 + 5 + 1  # tiles starting before 9 (two), all five, the first one only
    for item, keep in enumerate([9, 40, 1]):
        wanted = keep * HOP_LENGTH
        assert torch.equal(part[item, :, :wanted], whole[item, :, :wanted])
        done = -(-keep // tile) * tile * HOP_LENGTH  # the tile holding the last wanted frame is decoded whole
        assert not part[item, :, done:].any()
    with pytest.raises(ValueError, match="keep_frames names 2 items for a batch of 3"):
        codec.decode(latents, keep_frames=[1, 2])


def test_tile_decode_gives_a_pipeline_the_tiled_decode_in_diffusers_form() -> None:
    """Stable Audio Open's VAE inside diffusers' pipeline (which calls ``vae.decode(z).sample``) decodes tile by tile;
    a VAE with other strides (no measured margin) is left alone."""
    from samuel.codec import tile_decode_

    vae, plain = _tiny_vae(), _tiny_vae()
    assert "decode tiled (16 latent frames" in tile_decode_(vae, tile_frames=16)
    z = torch.randn(1, 64, 40, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        expected = plain.decode(z).sample
        torch.testing.assert_close(vae.decode(z).sample, expected, rtol=1e-5, atol=1e-6)
        (as_tuple,) = vae.decode(z, return_dict=False)
        torch.testing.assert_close(as_tuple, expected, rtol=1e-5, atol=1e-6)
    other = oobleck_class()(**{**TINY_OOBLECK_CONFIG, "downsampling_ratios": [2, 4]})
    before = other.decode
    assert tile_decode_(other).startswith("decode untiled (hop 8") and other.decode == before


def test_frozen_weight_norm_is_the_same_weight_and_keeps_the_parameters() -> None:
    from samuel.codec import freeze_weight_norm_

    vae = _tiny_vae(seed=6)
    names = [n for n, _ in vae.named_parameters()]
    audio = 0.3 * torch.randn(1, 2, 4 * HOP_LENGTH, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        before = vae.encode(audio).latent_dist.mean
        freeze_weight_norm_(vae)
        assert torch.equal(vae.encode(audio).latent_dist.mean, before)
    assert [n for n, _ in vae.named_parameters()] == names and any(n.endswith("weight_g") for n in names)
    assert not any(m._forward_pre_hooks for m in vae.modules())
    assert "encoder.conv1.weight" not in vae.state_dict()  # the frozen weight is not saved
    half = OobleckCodec(vae, "frozen, then moved to bf16", dtype=torch.bfloat16)  # the frozen weight moves too
    assert half.vae.encoder.conv1.weight.dtype == torch.bfloat16
    assert torch.isfinite(half.encode(audio)).all()


def test_the_fused_codec_equals_the_plain_vae() -> None:
    plain = _tiny_vae(seed=4)
    codec = OobleckCodec(_tiny_vae(seed=4), "tiny")
    audio = 0.3 * torch.randn(1, 2, 6 * HOP_LENGTH, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        latents = plain.encode(audio).latent_dist.mean
        decoded = plain.decode(latents).sample
    torch.testing.assert_close(codec.encode(audio), latents, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(codec.decode(latents), decoded, rtol=1e-5, atol=1e-6)


@needs_bf16_kernels
def test_samuel_at_bf16_runs_its_vae_in_bf16_and_records_it(tmp_path) -> None:
    """--precision bf16 end to end through the adapter (tiny preset, random weights): the VAE in bf16 with the
    compiled Snake, audio finite and float32, the precision in the sample's info and in the timing record."""
    from baselines import registry
    from baselines.base import GenerationRequest, WeightsChoice
    from samuel.audio import write_audio

    vocal = write_audio(tmp_path / "v.wav", 0.2 * torch.randn(2, 44_100, generator=torch.Generator().manual_seed(0))
                        .numpy(), 44_100)
    gen = registry.create("samuel", WeightsChoice("random"), preset="tiny", precision="bf16", steps=2)
    assert gen.precision() == "bf16 (U-Net in bf16, VAE in bfloat16)"
    out = gen.generate([GenerationRequest("v", 1, 1.0, "", vocal_path=vocal)])[0]
    codec = gen._accompanist.codec
    assert codec.dtype == torch.bfloat16 and codec.compiled_snake
    assert out.audio.dtype.name == "float32" and torch.isfinite(torch.from_numpy(out.audio)).all()
    assert out.info["precision"] == gen.precision()
    assert out.info["codec"] == {"dtype": "bfloat16", "fast_layers": True, "compiled_snake": codec.provenance()[
        "compiled_snake"], "conv_layout": "plain", "tile_frames": 128}  # conftest pins "auto" to plain
    assert registry.create("samuel", WeightsChoice("random"), preset="tiny").precision() == "fp32"


@pytest.mark.parametrize(("stride", "channels_in", "channels_out", "length"),
                         [(2, 3, 5, 7), (3, 4, 2, 5), (8, 6, 4, 3)])
def test_the_polyphase_upsampling_equals_conv_transpose(stride: int, channels_in: int, channels_out: int,
                                                        length: int) -> None:
    """Golden: diffusers' decoder upsampling (kernel 2s, stride s, padding ceil(s/2)) against the polyphase form in
    float64, both layouts of input, batch of 2; odd strides too."""
    import math

    from samuel.codec import channels_last_convs_, is_channels_last_1d

    gen = torch.Generator().manual_seed(stride)
    layer = torch.nn.ConvTranspose1d(channels_in, channels_out, 2 * stride, stride=stride,
                                     padding=math.ceil(stride / 2)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(2, channels_in, length, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x)
        model = channels_last_convs_(torch.nn.Sequential(layer))
        assert type(model[0]).__name__ == "PolyphaseConvTranspose1d"
        plain_in, nwc_in = model(x), model(x.transpose(1, 2).contiguous().transpose(1, 2))
    for out in (plain_in, nwc_in):
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert is_channels_last_1d(plain_in)


@pytest.mark.parametrize(("kernel", "stride", "dilation", "padding"), [(7, 1, 9, 27), (1, 1, 1, 0), (8, 4, 1, 2)])
def test_channels_last_conv_equals_conv1d(kernel: int, stride: int, dilation: int, padding: int) -> None:
    from samuel.codec import channels_last_convs_, is_channels_last_1d

    gen = torch.Generator().manual_seed(kernel)
    layer = torch.nn.Conv1d(4, 6, kernel, stride=stride, dilation=dilation, padding=padding).double()
    x = torch.randn(2, 4, 64, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x)
        keys = list(layer.state_dict())
        channels_last_convs_(layer)
        out = layer(x)
    assert type(layer).__name__ == "ChannelsLastConv1d" and list(layer.state_dict()) == keys
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert is_channels_last_1d(out)


def test_channels_last_vae_keeps_its_state_dict_gives_plain_outputs_and_needs_frozen_weights() -> None:
    from samuel.codec import channels_last_convs_, freeze_weight_norm_, speed_up_oobleck_

    with pytest.raises(ValueError, match="frozen"):
        channels_last_convs_(_tiny_vae(seed=8))
    vae = _tiny_vae(seed=8)
    keys = {k: v.clone() for k, v in vae.state_dict().items()}
    assert speed_up_oobleck_(vae, conv_layout="channels-last") == "channels-last"
    speed_up_oobleck_(vae, conv_layout="channels-last")  # idempotent
    assert {k: v for k, v in vae.state_dict().items()}.keys() == keys.keys()
    assert all(torch.equal(v, keys[k]) for k, v in vae.state_dict().items())
    latents = torch.randn(1, 64, 5, generator=torch.Generator().manual_seed(9))
    with torch.inference_mode():
        audio = vae.decode(latents).sample
        moments = vae.encode(audio).latent_dist.mean
    assert audio.is_contiguous() and moments.is_contiguous()
    assert freeze_weight_norm_(vae) is vae


AMX_FLAGS = "flags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN4_FLAGS = "flags\t\t: fpu sse2 avx512f avx512bw avx512_bf16 avx512_vnni\n"


def test_auto_conv_layout_is_channels_last_only_on_amx_cpus() -> None:
    from samuel.codec import resolve_conv_layout

    assert resolve_conv_layout("auto", "cpu", AMX_FLAGS) == "channels-last"
    assert resolve_conv_layout("auto", "cpu", ZEN4_FLAGS) == "plain"
    assert resolve_conv_layout("auto", "cpu", "") == "plain"
    assert resolve_conv_layout("auto", "cuda", AMX_FLAGS) == "plain"  # unmeasured on GPUs: cuDNN's own choice
    assert resolve_conv_layout("channels-last", "cpu", ZEN4_FLAGS) == "channels-last"
    with pytest.raises(ValueError, match="conv layout must be one of"):
        resolve_conv_layout("nhwc", "cpu")


@pytest.mark.parametrize("dtype", [torch.float64, pytest.param(torch.bfloat16, marks=needs_bf16_kernels)])
def test_the_channels_last_vae_decodes_and_encodes_what_the_plain_one_does(dtype: torch.dtype) -> None:
    """The whole tiny VAE both ways, from the same weights: equal in float64; in bf16 as close as two roundings of
    the same arithmetic (each layer rounds its own output)."""
    from samuel.codec import speed_up_oobleck_

    plain, nwc = _tiny_vae(seed=3, dtype=dtype), _tiny_vae(seed=3, dtype=dtype)
    assert speed_up_oobleck_(plain, conv_layout="plain") == "plain"
    assert speed_up_oobleck_(nwc, conv_layout="channels-last") == "channels-last"
    assert not any(type(m).__name__ == "ChannelsLastConv1d" for m in plain.modules())
    latents = torch.randn(2, 64, 6, generator=torch.Generator().manual_seed(4)).to(dtype)
    with torch.inference_mode():
        audio = (plain.decode(latents).sample, nwc.decode(latents).sample)
        moments = (plain.encode(audio[0]).latent_dist.mean, nwc.encode(audio[0]).latent_dist.mean)
    for a, b in (audio, moments):
        assert a.shape == b.shape and a.stride() == b.stride()  # callers see the plain layout
        if dtype == torch.float64:
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
        else:
            assert snr_db(a.float().numpy(), b.float().numpy()) > 30.0


def test_a_pipeline_vae_gets_the_compiled_snake_in_bf16_as_samuels_codec_does() -> None:
    """Stable Audio Open and ACE-Step set their VAE up as SAMUeL's codec is for the same precision: the Snake one
    compiled kernel in bf16 (where the compile pays), eager-fused in fp32; the label says which, and the bf16 decode
    is the eager fused one's within bf16 rounding."""
    from samuel.codec import FusedSnake, compiled_snake, speed_up_oobleck_, speed_up_pipeline_vae_

    eager, fast = _tiny_vae(seed=8, dtype=torch.bfloat16), _tiny_vae(seed=8, dtype=torch.bfloat16)
    speed_up_oobleck_(eager, conv_layout="plain")
    label = speed_up_pipeline_vae_(fast, torch.bfloat16)
    snakes = [m for m in fast.modules() if isinstance(m, FusedSnake)]
    assert snakes and all(m.compiled for m in snakes)
    assert ("(one compiled kernel)" if compiled_snake() is not None else "(compiled kernel unavailable") in label
    z = torch.randn(1, 64, 5, generator=torch.Generator().manual_seed(9)).bfloat16()
    with torch.inference_mode():
        torch.testing.assert_close(fast.decode(z).sample.float(), eager.decode(z).sample.float(), rtol=2e-2,
                                   atol=2e-2)
    plain = _tiny_vae(seed=8)
    assert "compiled" not in speed_up_pipeline_vae_(plain, torch.float32)
    assert not any(m.compiled for m in plain.modules() if isinstance(m, FusedSnake))
