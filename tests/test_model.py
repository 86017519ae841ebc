"""SAMUeL network: shapes, parameter count, initialisation, conditioning, save/load, bad inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from samuel import SAMUeL, SAMUeLConfig
from samuel.checkpoint import CheckpointError, load_config, load_model, save_model
from samuel.diffusion import guided_v
from samuel.guidance import guided_model_fn
from samuel.model import fill_zero_init_layers as randomize
from samuel.samplers import sample


def _inputs(config: SAMUeLConfig, b: int = 2, frames: int | None = None, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    frames = frames or config.num_frames
    x = torch.randn(b, config.latent_channels, frames, generator=gen)
    vocal = torch.randn(b, config.latent_channels, frames, generator=gen)
    t = torch.randint(0, config.num_train_timesteps, (b,), generator=gen)
    return x, t, vocal


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def test_default_config_is_the_papers():
    c = SAMUeLConfig()
    assert (c.latent_channels, c.channels, c.num_frames) == (64, (64, 128, 256, 512), 1024)
    assert (c.num_train_timesteps, c.cosine_s, c.heads, c.head_dim, c.local_window) == (800, 0.008, 8, 64, 16)
    assert c.mixing == "eq3"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.heads = 4  # type: ignore[misc]


def test_parameter_count_on_meta_device():
    with torch.device("meta"):
        model = SAMUeL()
    n = count(model)
    assert 14_500_000 <= n <= 16_500_000
    assert n == 15_394_560  # golden: changes only with the architecture


@pytest.mark.parametrize("frames", [8, 64, 200, 1024])
def test_output_shape_for_any_multiple_of_8(tiny_model, frames):
    x, t, vocal = _inputs(tiny_model.config, 2, frames)
    with torch.no_grad():
        assert tiny_model(x, t, vocal).shape == x.shape
        assert tiny_model(x, t, None).shape == x.shape


def test_default_model_shape(default_model):
    x, t, vocal = _inputs(default_model.config, 1)
    with torch.no_grad():
        assert default_model(x, t, vocal).shape == (1, 64, 1024)


def test_fresh_model_film_is_identity_and_skips_pass_through(tiny_config):
    """Init invariants: FiLM starts as the identity modulation, each decoder level's projection of cat(up, skip)
    starts as [0 | I] (the encoder skip passes through), and the head is GroupNorm -> Conv1d with no SiLU."""
    model = SAMUeL(tiny_config).eval()
    films = [m for m in model.modules() if hasattr(m, "film") and m.film is not None]
    assert films and all(not m.film.weight.any() and not m.vocal_film.weight.any() for m in films)
    for level in model.decoder:
        w = level.res.skip.weight[:, :, 0]  # (c, 2c)
        c = w.shape[0]
        assert not w[:, :c].any() and torch.equal(w[:, c:], torch.eye(c)) and not level.res.skip.bias.any()
    assert [type(m).__name__ for m in model.head] == ["GroupNorm", "Conv1d"]


def test_batch_equals_single(tiny_model):
    x, t, vocal = _inputs(tiny_model.config, 3)
    with torch.no_grad():
        batched = tiny_model(x, t, vocal)
        singles = torch.cat([tiny_model(x[i : i + 1], t[i : i + 1], vocal[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, singles, rtol=1e-4, atol=1e-5)


def test_conditioning_is_time_resolved(default_model):
    """Changing 16 vocal frames moves the output near them far more than far away (the authors' model, which
    conditions FiLM on a time-average, moves every frame alike)."""
    gen = torch.Generator().manual_seed(0)
    x, vocal = torch.randn(1, 64, 1024, generator=gen), torch.randn(1, 64, 1024, generator=gen)
    edited = vocal.clone()
    edited[..., 500:516] = torch.randn(1, 64, 16, generator=gen)
    dist = (torch.arange(1024) - 507.5).abs()
    for t in (0, 400, 799):
        tt = torch.tensor([t])
        with torch.no_grad():
            change = (default_model(x, tt, edited) - default_model(x, tt, vocal)).abs().mean(dim=1)[0]
        near, far = change[dist < 64].mean(), change[dist > 256].mean()
        assert near > 5 * far, (t, near.item(), far.item())


def test_dropped_condition_equals_null_condition(tiny_model):
    x, t, vocal = _inputs(tiny_model.config, 2)
    keep = torch.tensor([True, False])
    with torch.no_grad():
        mixed = tiny_model(x, t, vocal, keep_condition=keep)
        cond = tiny_model(x[:1], t[:1], vocal[:1])
        null = tiny_model(x[1:], t[1:], None)
    torch.testing.assert_close(mixed, torch.cat([cond, null]), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(cond, tiny_model(x[:1], t[:1], None))


def test_null_condition_is_learned_or_zero(tiny_config):
    learned = SAMUeL(tiny_config)
    assert "null_vocal" in dict(learned.named_parameters())
    zero = SAMUeL(dataclasses.replace(tiny_config, null_condition="zero"))
    assert "null_vocal" not in zero.state_dict()
    assert not zero.null_condition_input(2, 8).any()


def test_guidance_is_one_batched_forward(tiny_model):
    x, t, vocal = _inputs(tiny_model.config, 2)
    forward_calls = []  # guided sampling must not go through forward(), which re-encodes the vocal each step
    hook = tiny_model.register_forward_pre_hook(lambda *a: forward_calls.append(1))
    denoise_batches = []
    original = tiny_model.denoise

    def spy(x_t, t_, condition):
        denoise_batches.append(x_t.shape[0])
        return original(x_t, t_, condition)

    tiny_model.denoise = spy  # type: ignore[method-assign]
    try:
        with torch.no_grad():
            guided = guided_model_fn(tiny_model, vocal, 3.0)(x, t)
    finally:
        del tiny_model.denoise
        hook.remove()
    assert denoise_batches == [4] and forward_calls == []
    with torch.no_grad():
        expected = guided_v(tiny_model(x, t, vocal), tiny_model(x, t, None), 3.0)
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=1e-5)


def test_mixing_schedule_is_used(tiny_config):
    x, t, vocal = _inputs(tiny_config)
    outs = []
    for mixing in ("eq3", "reversed", "authors-code"):
        torch.manual_seed(0)
        model = randomize(SAMUeL(dataclasses.replace(tiny_config, mixing=mixing))).eval()
        with torch.no_grad():
            outs.append(model(x, t, vocal))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_rope_tables_are_built_once_and_not_saved(tiny_model):
    state = tiny_model.state_dict()
    assert not any(k.startswith(("rope_", "alpha_bar")) for k in state)
    ptr = tiny_model.rope_cos.data_ptr()
    x, t, vocal = _inputs(tiny_model.config, 1)
    with torch.no_grad():
        tiny_model(x, t, vocal)
        tiny_model(x, t, vocal)
    assert tiny_model.rope_cos.data_ptr() == ptr
    with torch.no_grad():  # longer than the configured clip: tables grow once
        tiny_model(*(_inputs(tiny_model.config, 1, 4 * tiny_model.config.num_frames)[i] for i in range(3)))
    assert tiny_model.rope_cos.shape[0] == 4 * tiny_model.config.num_frames


def test_save_load_round_trip(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "w.safetensors")
    loaded = load_model(path)
    assert loaded.config == tiny_model.config
    assert load_config(path) == tiny_model.config
    x, t, vocal = _inputs(tiny_model.config)
    with torch.no_grad():
        assert torch.equal(loaded(x, t, vocal), tiny_model(x, t, vocal))
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


_SAVE_IN_A_FRESH_PROCESS = """
import sys
import torch
from samuel import SAMUeL, SAMUeLConfig
from samuel.checkpoint import save_model
from samuel.model import fill_zero_init_layers

torch.manual_seed(0)
model = fill_zero_init_layers(SAMUeL(SAMUeLConfig.tiny()))
extra = {f"key_{c}": f"value {c} \u00e9" for c in "qwertyuiop"}  # ten keys: 10! orders to fall into by chance
save_model(model, sys.argv[1], extra_metadata=extra)
"""


def test_saved_weights_are_byte_identical_across_processes(tmp_path):
    """The same weights give the same file in two processes (safetensors writes metadata in hash-map order, which
    differs per process; the file's digest is the harness's sample identity)."""
    import hashlib
    import subprocess
    import sys

    from safetensors.torch import load_file

    from samuel.checkpoint import read_metadata

    paths = [tmp_path / f"w{i}.safetensors" for i in range(2)]
    for path in paths:
        subprocess.run([sys.executable, "-c", _SAVE_IN_A_FRESH_PROCESS, str(path)], check=True, timeout=120)
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert digests[0] == digests[1]
    torch.manual_seed(0)
    expected = randomize(SAMUeL(SAMUeLConfig.tiny())).state_dict()
    for loaded in (load_file(str(paths[0])), load_model(paths[0]).state_dict()):  # safetensors' reader and ours
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    meta = read_metadata(paths[0])
    assert meta["key_q"] == "value q \u00e9" and len(meta) == 12 and meta["format"] == "samuel-weights/1"


def test_sampling_is_deterministic_with_a_generator(tiny_model):
    _, _, vocal = _inputs(tiny_model.config, 1)
    fn = guided_model_fn(tiny_model, vocal, 2.0)

    def run(seed):
        return sample(fn, vocal.shape, tiny_model.alpha_bar, sampler="dpmpp", steps=5,
                      generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"junk\.safetensors"):
        load_model(junk)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain))
    with pytest.raises(CheckpointError, match=r"plain\.safetensors.*no 'samuel_config'"):
        load_model(plain)


def test_checkpoint_with_mismatched_weights(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "w.safetensors")
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    state.pop(next(iter(state)))
    save_file(state, str(path), metadata={"samuel_config": tiny_model.config.to_json()})
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(path)


@pytest.mark.parametrize(
    ("x_shape", "t", "match"),
    [((1, 32, 64), [3], "must be \\(B, 64, T\\)"),
     ((1, 64, 60), [3], "multiple of 8"),
     ((1, 64, 64), [800], "lie in \\[0, 800\\)"),
     ((1, 64, 64), [-1], "lie in"),
     ((2, 64, 64), [3], "integer tensor|must be \\(2,\\)")],
)
def test_bad_inputs(x_shape, t, match):
    model = SAMUeL(SAMUeLConfig.tiny(channels=(8, 8, 8, 8), groups=4))
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(x_shape), torch.tensor(t))


def test_bad_input_types_and_shapes():
    model = SAMUeL(SAMUeLConfig.tiny(channels=(8, 8, 8, 8), groups=4))
    x = torch.zeros(1, 64, 64)
    with pytest.raises(ValueError, match="integer"):
        model(x, torch.tensor([3.0]))
    with pytest.raises(ValueError, match="integer"):
        model(x, torch.tensor([True]))
    with pytest.raises(ValueError, match="same shape"):
        model(x, torch.tensor([3]), torch.zeros(1, 64, 32))
    with pytest.raises(ValueError, match="keep_condition"):
        model(x, torch.tensor([3]), torch.zeros(1, 64, 64), keep_condition=torch.tensor([True, False]))


@pytest.mark.parametrize(
    "overrides",
    [{"mixing": "sideways"}, {"local_window": 15}, {"channels": (64, 128)}, {"null_condition": "random"},
     {"cross_attention_levels": (7,)}, {"num_frames": 1001}, {"groups": 7}],
)
def test_bad_configs(overrides):
    with pytest.raises(ValueError):
        SAMUeLConfig(**overrides)


def test_config_json_round_trip():
    c = SAMUeLConfig.tiny(mixing="reversed")
    assert SAMUeLConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="unknown SAMUeLConfig keys"):
        SAMUeLConfig.from_dict({**c.to_dict(), "future_knob": 1})
