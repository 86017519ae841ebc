"""samuel.codec and samuel.codec_weights: every loading route, shapes, determinism, errors and provenance,
with tiny random VAEs only.

The stable-audio-tools (SAT) tests do not trust our own key mapping: they build a module tree shaped like SAT's
Oobleck (nn.Sequential stacks of the same layers, SnakeBeta with (C,) parameters, torch weight norm), take its
state-dict keys as the real checkpoint layout, and compare the loaded codec with that tree's own forward pass.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import re
import shutil
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from samuel.codec import (
    DEFAULT_CODEC,
    TINY_OOBLECK_CONFIG,
    CodecError,
    CodecNotFoundError,
    OobleckCodec,
    save_tiny_random_oobleck,
)
from samuel.codec_weights import SAT_PREFIX, _config_from_model_config, sat_to_diffusers_key

HOP = 2048
FRAMES = 2  # latent frames per test clip: the tiny encoder is 128 wide at full rate, so keep clips short
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SAO_DEFAULT = {  # diffusers' AutoencoderOobleck defaults, which must be the Stable Audio Open VAE
    "encoder_hidden_size": 128, "downsampling_ratios": [2, 4, 4, 8, 8], "channel_multiples": [1, 2, 4, 8, 16],
    "decoder_channels": 128, "decoder_input_channels": 64, "audio_channels": 2, "sampling_rate": 44100,
}


# ---------------------------------------------------------------------------------------------------------------
# a module tree laid out like stable-audio-tools' Oobleck autoencoder
# ---------------------------------------------------------------------------------------------------------------
class _SnakeBeta(nn.Module):
    """SAT's SnakeBeta: per-channel (C,) log-scale alpha and beta."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha.exp()[None, :, None], self.beta.exp()[None, :, None]
        return x + torch.sin(alpha * x) ** 2 / (beta + 1e-9)


class _Stack(nn.Module):
    """Children in ``self.layers`` (an nn.Sequential), as in every SAT encoder, decoder, block and residual unit."""

    def __init__(self, *layers: nn.Module, residual: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


def _wn(conv: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(conv)  # SAT's WNConv1d: weight_g / weight_v


def _residual(c: int, dilation: int) -> _Stack:
    conv7 = nn.Conv1d(c, c, 7, dilation=dilation, padding=3 * dilation)
    return _Stack(_SnakeBeta(c), _wn(conv7), _SnakeBeta(c), _wn(nn.Conv1d(c, c, 1)), residual=True)


def _sat_autoencoder(cfg: dict[str, Any]) -> nn.Module:
    """SAT's OobleckEncoder / OobleckDecoder (snake, no tanh) for the diffusers config ``cfg``."""
    ch, dch, strides = cfg["encoder_hidden_size"], cfg["decoder_channels"], cfg["downsampling_ratios"]
    mults, io, latent = [1, *cfg["channel_multiples"]], cfg["audio_channels"], cfg["decoder_input_channels"]
    enc: list[nn.Module] = [_wn(nn.Conv1d(io, ch, 7, padding=3))]
    for i, s in enumerate(strides):
        cin, cout = mults[i] * ch, mults[i + 1] * ch
        down = nn.Conv1d(cin, cout, 2 * s, stride=s, padding=math.ceil(s / 2))
        enc.append(_Stack(_residual(cin, 1), _residual(cin, 3), _residual(cin, 9), _SnakeBeta(cin), _wn(down)))
    enc += [_SnakeBeta(mults[-1] * ch), _wn(nn.Conv1d(mults[-1] * ch, 2 * latent, 3, padding=1))]
    dec: list[nn.Module] = [_wn(nn.Conv1d(latent, mults[-1] * dch, 7, padding=3))]
    for i in range(len(strides), 0, -1):
        cin, cout, s = mults[i] * dch, mults[i - 1] * dch, strides[i - 1]
        up = nn.ConvTranspose1d(cin, cout, 2 * s, stride=s, padding=math.ceil(s / 2))
        dec.append(_Stack(_SnakeBeta(cin), _wn(up), _residual(cout, 1), _residual(cout, 3), _residual(cout, 9)))
    dec += [_SnakeBeta(dch), _wn(nn.Conv1d(dch, io, 7, padding=3, bias=False)), nn.Identity()]  # final_tanh false
    model = nn.Module()
    model.encoder, model.decoder = _Stack(*enc), _Stack(*dec)
    return model


def _sat_model_config(cfg: dict[str, Any], **decoder_extra: Any) -> dict[str, Any]:
    """A stable-audio-tools model_config.json (shaped like SAO's) for the diffusers config ``cfg``."""
    common = {"c_mults": cfg["channel_multiples"], "strides": cfg["downsampling_ratios"], "use_snake": True}
    latent = cfg["decoder_input_channels"]
    return {
        "model_type": "diffusion_cond", "sample_size": 2097152, "sample_rate": cfg["sampling_rate"],
        "audio_channels": 2,
        "model": {
            "pretransform": {"type": "autoencoder", "iterate_batch": True, "config": {
                "encoder": {"type": "oobleck", "requires_grad": False, "config": {
                    "in_channels": 2, "channels": cfg["encoder_hidden_size"], "latent_dim": 2 * latent, **common}},
                "decoder": {"type": "oobleck", "config": {
                    "out_channels": 2, "channels": cfg["decoder_channels"], "latent_dim": latent, **common,
                    "final_tanh": False, **decoder_extra}},
                "bottleneck": {"type": "vae"}, "latent_dim": latent, "downsampling_ratio": 2048, "io_channels": 2}},
            "io_channels": 64,
        },
    }


def _diffusion_junk() -> dict[str, torch.Tensor]:
    """A few of the non-VAE tensors that a real SAO model.safetensors also holds."""
    return {
        "model.model.transformer.layers.0.self_attn.to_qkv.weight": torch.zeros(6, 2),
        "conditioner.conditioners.seconds_start.embedder.embedding.0.weight": torch.zeros(3),
        "model.model.to_timestep_embed.0.bias": torch.zeros(2),
    }


def _to_sat_state(diffusers_state: dict[str, torch.Tensor], num_blocks: int = 5) -> dict[str, torch.Tensor]:
    """Inverse of the mapping, over the keys of the SAT-shaped tree: diffusers tensors under SAT names."""
    sat_keys = _sat_autoencoder(TINY_OOBLECK_CONFIG).state_dict().keys()
    inverse = {sat_to_diffusers_key(k, num_blocks): k for k in sat_keys}
    assert None not in inverse
    return {SAT_PREFIX + inverse[k]: v.reshape(-1) if k.endswith((".alpha", ".beta")) else v
            for k, v in diffusers_state.items()}


# ---------------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    # The tiny VAE's convolutions are too small to share out: on a busy 2-core machine, two OpenMP threads made
    # this file 3 to 6 times slower than one (they spin waiting for each other).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_random_oobleck(tmp_path_factory.mktemp("tiny") / "vae", seed=0)


@pytest.fixture(scope="module")
def codec(tiny_dir: Path) -> OobleckCodec:
    return OobleckCodec.load(tiny_dir)


@pytest.fixture(scope="module")
def audio() -> torch.Tensor:
    return 0.3 * torch.randn(2, 2, FRAMES * HOP, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference(codec: OobleckCodec, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    latents = codec.encode(audio)
    return latents, codec.decode(latents)


def _assert_same_outputs(other: OobleckCodec, audio: torch.Tensor, reference: tuple) -> None:
    latents, decoded = reference
    assert torch.equal(other.encode(audio), latents)
    assert torch.equal(other.decode(latents), decoded)


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache under tmp_path, HF_HUB_OFFLINE=1 in the environment, and the network cut off."""
    home = tmp_path / "hf"
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the codec tried to reach the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return cache


def _patch_hub_constants(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    # huggingface_hub reads HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE once, at import: patch its copies too.
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HOME", str(cache.parent))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def _fill_hub_cache(cache: Path, files: dict[str, Path], repo: str = DEFAULT_CODEC) -> Path:
    """The real cache layout: blobs named by sha256, snapshot symlinks, refs/main holding the commit.

    ``files`` maps paths in the repository (``vae/config.json``) to local files. Returns the snapshot folder.
    """
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / COMMIT
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    for name, source in files.items():
        data = source.read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def _vae_files(folder: Path) -> dict[str, Path]:
    return {f"vae/{name}": folder / name for name in ("config.json", "diffusion_pytorch_model.safetensors")}


# ---------------------------------------------------------------------------------------------------------------
# encode / decode
# ---------------------------------------------------------------------------------------------------------------
def test_heavy_libraries_are_imported_lazily() -> None:
    # An AST check rather than a fresh interpreter: starting one costs seconds on a busy 2-core machine.
    from samuel import codec, codec_weights, hub

    for module in (codec, codec_weights, hub):
        tree = ast.parse(Path(module.__file__).read_text())
        top_level = set()
        for node in tree.body:  # module level only; `if TYPE_CHECKING:` blocks never run
            if isinstance(node, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top_level.add(node.module.split(".")[0])
        heavy = top_level & {"diffusers", "huggingface_hub", "safetensors", "torchaudio", "stable_audio_tools"}
        assert not heavy, (module.__name__, heavy)


def test_shapes_and_attributes(codec: OobleckCodec, audio: torch.Tensor, reference: tuple) -> None:
    assert (codec.sample_rate, codec.hop_length, codec.latent_channels, codec.audio_channels) == (44100, 2048, 64, 2)
    one = codec.encode(torch.randn(1, 2, 8 * HOP, generator=torch.Generator().manual_seed(2)))
    assert one.shape == (1, 64, 8) and one.dtype == torch.float32
    assert codec.decode(one).shape == (1, 2, 8 * HOP)
    latents, decoded = reference
    assert latents.shape == (2, 64, FRAMES) and decoded.shape == (2, 2, FRAMES * HOP)
    assert decoded.dtype == torch.float32 and torch.isfinite(decoded).all()


def test_encode_is_deterministic_and_outputs_are_ordinary(codec: OobleckCodec, audio: torch.Tensor,
                                                          reference: tuple) -> None:
    latents = codec.encode(audio)
    assert torch.equal(latents, reference[0])  # the posterior mean, not a sample
    assert not latents.is_inference() and not latents.requires_grad
    weight = torch.ones(1, requires_grad=True)
    (latents * weight).sum().backward()  # usable by autograd code later (an inference tensor would raise here)
    assert weight.grad is not None


def test_batches_are_split_and_match_single_items(codec: OobleckCodec, audio: torch.Tensor, reference: tuple) -> None:
    assert codec.max_batch == 1  # the CPU default
    small = OobleckCodec(codec.vae, codec.source, max_batch=1)
    sizes: list[int] = []
    hook = small.vae.encoder.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    try:
        latents = small.encode(audio)
    finally:
        hook.remove()
    assert sizes == [1, 1]
    torch.testing.assert_close(latents, reference[0], rtol=1e-5, atol=1e-6)
    single = codec.decode(reference[0][1:])
    torch.testing.assert_close(single, reference[1][1:], rtol=1e-5, atol=1e-6)
    assert codec.encode(audio[:0]).shape == (0, 64, FRAMES)


@pytest.mark.parametrize(("call", "shape", "dtype", "match"), [
    ("encode", (1, 1, HOP), torch.float32, r"\(B, 2, S\)"),
    ("encode", (2, HOP), torch.float32, r"\(B, 2, S\)"),
    ("encode", (1, 2, HOP + 1), torch.float32, "multiple of the hop length 2048"),
    ("encode", (1, 2, HOP), torch.int16, "floating point"),
    ("decode", (1, 32, 2), torch.float32, r"\(B, 64, T\)"),
    ("decode", (1, 64, 0), torch.float32, "empty"),
])
def test_bad_input_is_a_value_error(codec: OobleckCodec, call: str, shape: tuple, dtype: torch.dtype,
                                    match: str) -> None:
    with pytest.raises(ValueError, match=match):
        getattr(codec, call)(torch.zeros(shape, dtype=dtype))


def test_bfloat16_computes_in_bf16_and_returns_float32(tiny_dir: Path, audio: torch.Tensor, reference: tuple) -> None:
    half = OobleckCodec.load(tiny_dir, dtype=torch.bfloat16)
    assert next(half.vae.parameters()).dtype == torch.bfloat16
    latents = half.encode(audio[:1])
    assert latents.dtype == torch.float32
    assert (latents - reference[0][:1]).abs().max() < 0.05 * reference[0].abs().max()
    assert half.decode(latents).dtype == torch.float32


# ---------------------------------------------------------------------------------------------------------------
# loading routes
# ---------------------------------------------------------------------------------------------------------------
def _assert_weights_found_before_loading(spec: str | Path, codec: OobleckCodec) -> None:
    """samuel.codec_weights.vae_weight_files names, without loading, the files the load hashed: a checkpoint's
    VAE-mismatch check runs on it before any model is loaded (baselines.samuel_adapter)."""
    from samuel.codec_weights import vae_weight_files

    loaded = codec.provenance()["weights_files"]
    assert loaded and [str(p) for p in vae_weight_files(str(spec))] == loaded


def test_sao_snapshot_layout(tiny_dir: Path, tmp_path: Path, audio: torch.Tensor, reference: tuple) -> None:
    shutil.copytree(tiny_dir, tmp_path / "sao" / "vae")
    codec = OobleckCodec.load(tmp_path / "sao")
    _assert_same_outputs(codec, audio, reference)
    assert codec.provenance()["resolved"] == str((tmp_path / "sao" / "vae").absolute())
    _assert_weights_found_before_loading(tmp_path / "sao", codec)
    _assert_weights_found_before_loading(tiny_dir / "config.json", OobleckCodec.load(tiny_dir / "config.json"))


def test_hub_id_from_cache_offline(tiny_dir: Path, offline_hub: Path, monkeypatch: pytest.MonkeyPatch,
                                   audio: torch.Tensor, reference: tuple) -> None:
    _patch_hub_constants(monkeypatch, offline_hub)
    snapshot = _fill_hub_cache(offline_hub, _vae_files(tiny_dir))
    codec = OobleckCodec.load(DEFAULT_CODEC)
    _assert_same_outputs(codec, audio, reference)
    info = codec.provenance()
    assert info["source"] == DEFAULT_CODEC and info["hub_id"] == DEFAULT_CODEC
    assert info["resolved"] == str(snapshot / "vae")
    weights = (tiny_dir / "diffusion_pytorch_model.safetensors").read_bytes()
    assert info["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    _assert_weights_found_before_loading(DEFAULT_CODEC, codec)


@pytest.mark.parametrize("patch_constants", [True, False], ids=["constants-patched", "environment-only"])
def test_missing_hub_weights_offline(offline_hub: Path, monkeypatch: pytest.MonkeyPatch,
                                     patch_constants: bool) -> None:
    # environment-only: huggingface_hub's import-time constants still say "online, default cache"; the codec must
    # follow the environment as it is now, and not touch the network.
    if patch_constants:
        _patch_hub_constants(monkeypatch, offline_hub)
    with pytest.raises(CodecNotFoundError) as info:
        OobleckCodec.load(DEFAULT_CODEC)
    message = str(info.value)
    for needle in (f"'{DEFAULT_CODEC}'", str(offline_hub), "licence", "gated", "HF_HUB_OFFLINE=1", "--codec",
                   "hf download"):
        assert needle in message, needle


def test_hub_cache_with_config_but_no_weights(tiny_dir: Path, offline_hub: Path) -> None:
    _fill_hub_cache(offline_hub, {"vae/config.json": tiny_dir / "config.json"})
    with pytest.raises(CodecNotFoundError, match=re.escape(f"weights not found for '{DEFAULT_CODEC}'")):
        OobleckCodec.load(DEFAULT_CODEC)
    from samuel.codec_weights import vae_weight_files

    assert vae_weight_files(DEFAULT_CODEC) == ()  # nothing to hash: the mismatch check leaves it to the load


def test_hub_cache_with_only_the_sat_checkpoint(tiny_dir: Path, offline_hub: Path, tmp_path: Path,
                                                audio: torch.Tensor, reference: tuple) -> None:
    # `hf download stabilityai/stable-audio-open-1.0 model.safetensors model_config.json`: no vae/ folder
    save_file(_to_sat_state(load_file(tiny_dir / "diffusion_pytorch_model.safetensors")), tmp_path / "m.safetensors")
    (tmp_path / "model_config.json").write_text(json.dumps(_sat_model_config(TINY_OOBLECK_CONFIG)))
    snapshot = _fill_hub_cache(offline_hub, {"model.safetensors": tmp_path / "m.safetensors",
                                             "model_config.json": tmp_path / "model_config.json"})
    codec = OobleckCodec.load(DEFAULT_CODEC)
    _assert_same_outputs(codec, audio, reference)
    info = codec.provenance()
    assert info["format"] == "stable-audio-tools" and info["resolved"] == str(snapshot / "model.safetensors")
    assert info["sat_config"] == str(snapshot / "model_config.json") and info["hub_id"] == DEFAULT_CODEC
    _assert_weights_found_before_loading(DEFAULT_CODEC, codec)


@pytest.mark.parametrize("spec", ["{tmp}/nowhere/vae", "./no-such-vae-folder", "~/no-such-vae/model.safetensors",
                                  "weights.ckpt"])
def test_missing_local_path_names_it(tmp_path: Path, spec: str) -> None:
    spec = spec.format(tmp=tmp_path)
    with pytest.raises(CodecNotFoundError, match="codec path not found") as info:
        OobleckCodec.load(spec)
    assert spec in str(info.value)


def test_folder_without_vae(tmp_path: Path) -> None:
    with pytest.raises(CodecNotFoundError, match=r"config\.json.*vae/config\.json.*model\.safetensors") as info:
        OobleckCodec.load(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_bad_config_names_the_mismatch(tmp_path: Path) -> None:
    from diffusers import AutoencoderOobleck

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        small = AutoencoderOobleck(**{**TINY_OOBLECK_CONFIG, "encoder_hidden_size": 64, "decoder_input_channels": 32})
    small.save_pretrained(tmp_path / "bad")
    with pytest.raises(CodecError, match=r"decoder_input_channels.* is 32, expected 64") as info:
        OobleckCodec.load(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(info.value) and "encoder_hidden_size is 64" in str(info.value)
    with pytest.raises(CodecError, match="is 32, expected 64"):
        OobleckCodec(small, "in-memory")


def test_missing_weights_are_not_silently_random(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_dir, tmp_path / "vae")
    weights = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    del state["decoder.conv2.weight_v"]
    save_file(state, weights)
    with pytest.raises(CodecError, match=r"missing keys \(decoder\.conv2\.weight_v\)"):
        OobleckCodec.load(tmp_path / "vae")


def test_provenance(codec: OobleckCodec, tiny_dir: Path) -> None:
    info = codec.provenance()
    weights = tiny_dir / "diffusion_pytorch_model.safetensors"
    assert info["codec"] == "oobleck" and info["source"] == str(tiny_dir) and info["format"] == "diffusers"
    assert info["resolved"] == str(tiny_dir.absolute())
    assert info["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert info["random_weights"] is True
    assert info["config"] == TINY_OOBLECK_CONFIG
    json.dumps(info)  # plain data


def test_tiny_model_is_seeded_and_leaves_the_global_rng_alone(tmp_path: Path, tiny_dir: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    save_tiny_random_oobleck(tmp_path / "again", seed=0)
    assert torch.equal(torch.rand(1), expected)
    again = (tmp_path / "again" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert again == (tiny_dir / "diffusion_pytorch_model.safetensors").read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# stable-audio-tools checkpoints
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [TINY_OOBLECK_CONFIG, SAO_DEFAULT], ids=["tiny", "stable-audio-open"])
def test_sat_mapping_covers_the_model_exactly(config: dict[str, Any]) -> None:
    from diffusers import AutoencoderOobleck

    with torch.device("meta"), warnings.catch_warnings():  # shapes only: the full-size model costs nothing here
        warnings.simplefilter("ignore", FutureWarning)
        sat = _sat_autoencoder(config).state_dict()
        target = AutoencoderOobleck(**config).state_dict()
    mapped = {sat_to_diffusers_key(k, len(config["downsampling_ratios"])): v for k, v in sat.items()}
    assert set(mapped) == set(target)
    for key, value in mapped.items():
        want = target[key].shape
        assert (value.reshape(1, -1, 1).shape if key.endswith((".alpha", ".beta")) else value.shape) == want, key


def test_sao_model_config_is_the_diffusers_default(tmp_path: Path) -> None:
    path = tmp_path / "model_config.json"
    path.write_text(json.dumps(_sat_model_config(SAO_DEFAULT)))
    assert _config_from_model_config(path) == SAO_DEFAULT
    path.write_text(json.dumps(_sat_model_config(SAO_DEFAULT, final_tanh=True)))
    with pytest.raises(CodecError, match="final_tanh"):
        _config_from_model_config(path)


def test_sat_checkpoint_matches_sat_forward(tmp_path: Path, audio: torch.Tensor) -> None:
    torch.manual_seed(5)
    sat = _sat_autoencoder(TINY_OOBLECK_CONFIG).eval()
    with torch.no_grad():
        for name, param in sat.named_parameters():
            if name.endswith((".alpha", ".beta")):
                param.normal_(0.0, 0.1)
            elif name.endswith("weight_g"):
                param.mul_(torch.rand_like(param) + 0.5)  # g independent of |v|
    folder = tmp_path / "sao"
    folder.mkdir()
    state = {SAT_PREFIX + k: v.detach().clone() for k, v in sat.state_dict().items()} | _diffusion_junk()
    save_file(state, folder / "model.safetensors")
    (folder / "model_config.json").write_text(json.dumps(_sat_model_config(TINY_OOBLECK_CONFIG)))

    codec = OobleckCodec.load(folder)  # the folder route finds model.safetensors
    with torch.no_grad():
        expected = sat.encoder(audio)[:, :64]  # the VAE bottleneck's mean: first half of the channels
        latents = codec.encode(audio)
        torch.testing.assert_close(latents, expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(codec.decode(latents), sat.decoder(latents), rtol=1e-4, atol=1e-5)
    info = codec.provenance()
    assert info["format"] == "stable-audio-tools" and info["sat_config"] == str(folder / "model_config.json")
    assert info["weights_sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_sat_files_load_bit_exact(tiny_dir: Path, tmp_path: Path, audio: torch.Tensor, reference: tuple) -> None:
    state = _to_sat_state(load_file(tiny_dir / "diffusion_pytorch_model.safetensors"))
    with_config = tmp_path / "with_config"
    with_config.mkdir()
    save_file(state | _diffusion_junk(), with_config / "model.safetensors")
    (with_config / "model_config.json").write_text(json.dumps(_sat_model_config(TINY_OOBLECK_CONFIG)))
    loaded = OobleckCodec.load(with_config / "model.safetensors")
    _assert_same_outputs(loaded, audio, reference)
    _assert_weights_found_before_loading(with_config, loaded)

    # A training checkpoint: under "state_dict", torch's parametrized weight-norm names, no model_config.json
    # (the architecture is then read off the tensor shapes).
    renamed = {k.replace("weight_g", "parametrizations.weight.original0")
               .replace("weight_v", "parametrizations.weight.original1"): v for k, v in state.items()}
    torch.save({"state_dict": renamed | _diffusion_junk(), "global_step": 7}, tmp_path / "model.ckpt")
    codec = OobleckCodec.load(tmp_path / "model.ckpt")
    _assert_same_outputs(codec, audio, reference)
    assert "inferred" in codec.provenance()["sat_config"]


def test_sat_checkpoint_without_vae(tmp_path: Path) -> None:
    save_file(_diffusion_junk(), tmp_path / "model.safetensors")
    with pytest.raises(CodecError, match=r"no Stable Audio Open VAE weights.*'pretransform\.model\.'") as info:
        OobleckCodec.load(tmp_path / "model.safetensors")
    assert str(tmp_path / "model.safetensors") in str(info.value)


def test_unreadable_checkpoints(tmp_path: Path) -> None:
    torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1)}, tmp_path / "model.ckpt")
    with pytest.raises(CodecError, match=r"weights_only=True\) \(Unsupported global: GLOBAL argparse\.Namespace"):
        OobleckCodec.load(tmp_path / "model.ckpt")
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CodecError, match="not a readable safetensors file"):
        OobleckCodec.load(tmp_path / "model.safetensors")


def test_sat_checkpoint_with_a_missing_tensor(tiny_dir: Path, tmp_path: Path) -> None:
    state = _to_sat_state(load_file(tiny_dir / "diffusion_pytorch_model.safetensors"))
    del state[SAT_PREFIX + "decoder.layers.3.layers.2.layers.1.weight_g"]
    state[SAT_PREFIX + "encoder.layers.9.weight"] = torch.zeros(1)
    (tmp_path / "model_config.json").write_text(json.dumps(_sat_model_config(TINY_OOBLECK_CONFIG)))
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CodecError) as info:
        OobleckCodec.load(tmp_path / "model.safetensors")
    message = str(info.value)
    assert str(tmp_path / "model.safetensors") in message
    assert "1 missing keys (decoder.block.2.res_unit1.conv1.weight_g)" in message
    assert "1 unexpected keys (pretransform.model.encoder.layers.9.weight)" in message
