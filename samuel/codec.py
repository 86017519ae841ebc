"""The Stable Audio Open 1.0 VAE ("Oobleck") as SAMUeL's codec: 44.1 kHz stereo <-> 64-channel latents.

One latent frame stands for 2048 samples (strides 2 * 4 * 4 * 8 * 8). The model is diffusers'
``AutoencoderOobleck``; diffusers is imported only when a codec is built, so importing this module is cheap.
:meth:`OobleckCodec.load` finds the weights through :mod:`samuel.codec_weights` (a diffusers folder, a
stable-audio-tools checkpoint or a Hugging Face id from the cache); this module is the codec itself, its errors
and its random-weight twins.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from samuel.codec_spec import (  # the codec's public names stay importable from here
    AUDIO_CHANNELS,
    DEFAULT_CODEC,
    LATENT_CHANNELS,
    RANDOM_MARKER,
    SAMPLE_RATE,
    CodecError,
    CodecOrigin,
    config_problems,
    oobleck_class,
    quiet_library_warnings,
)
from samuel.codec_spec import HOP_LENGTH as HOP_LENGTH
from samuel.codec_spec import CodecNotFoundError as CodecNotFoundError
from samuel.codec_weights import load_vae
from samuel.hashing import files_sha256
from samuel.heap import heap_allocations
from samuel.provenance import cpu_flags

if TYPE_CHECKING:
    from diffusers import AutoencoderOobleck

# Items per VAE call. The full-size encoder peaks at about 3.6 MB per latent frame in float32 (3.7 GB for one 47.5 s
# chunk of 1024 frames, measured on CPU): one item at a time on CPU, where batching gains nothing, a few on GPUs.
CPU_MAX_BATCH = 1
GPU_MAX_BATCH = 4

# Tiling (issue 15). On a CPU the VAE's audio-rate activations of a 1024-frame chunk are about 1 GB each, so every
# Snake and convolution streams them through memory: measured on 2 AMD EPYC cores, bf16, 47.55 s took 2.2x the time
# of eight 5.9 s pieces. Tiles of TILE_FRAMES latent frames run with TILE_MARGIN_FRAMES of real context on each side
# and keep only their middle, so the result is the untiled one (the convolutions see the same inputs): one latent
# frame reaches 9.27 frames of decoded audio either side, and one encoded frame reads audio from 8 frames before to 7
# after it (measured by perturbation; tests/test_codec.py checks the margin covers both).
TILE_FRAMES = 128
TILE_MARGIN_FRAMES = 10

# The convolutions' memory layout (issue 15). On an Intel Xeon with AMX, oneDNN runs channels-last convolutions (and
# the 1x1 ones as plain GEMMs over time-major rows) about 2x faster in bf16 and 1.3x in fp32 over the whole VAE, where
# plain (B, C, L) tensors are reordered on every call; on AMD EPYC Zen 4 channels-last ran 0.76-0.91x (measured before
# the 1x1 GEMMs; docs/benchmarks.md). "auto" is channels-last on AMX CPUs and plain elsewhere.
CONV_LAYOUTS = ("auto", "plain", "channels-last")
AMX_FLAGS = ("amx_bf16", "amx_tile")


def resolve_conv_layout(layout: str, device: torch.device | str, cpuinfo: str | None = None) -> str:
    """``layout`` as run on ``device``: "auto" is channels-last on a CPU with AMX, plain elsewhere (GPUs unmeasured).
    ``cpuinfo``: /proc/cpuinfo's text, for tests."""
    if layout not in CONV_LAYOUTS:
        raise ValueError(f"conv layout must be one of {', '.join(CONV_LAYOUTS)}, got {layout!r}")
    if layout != "auto":
        return layout
    if torch.device(device).type == "cpu" and any(flag in cpu_flags(cpuinfo) for flag in AMX_FLAGS):
        return "channels-last"
    return "plain"

# The smallest Oobleck with the real strides (hop 2048) and 64 latent channels. The encoder cannot be narrower than
# 128 channels: diffusers ties its width to its output, which holds the posterior mean and scale (2 x 64); the
# decoder can, and is 4 wide. About 2.9 M parameters (11.6 MB), nearly all in the encoder.
TINY_OOBLECK_CONFIG: dict[str, Any] = {
    "encoder_hidden_size": 2 * LATENT_CHANNELS,
    "downsampling_ratios": [2, 4, 4, 8, 8],
    "channel_multiples": [1, 1, 1, 1, 1],
    "decoder_channels": 4,
    "decoder_input_channels": LATENT_CHANNELS,
    "audio_channels": AUDIO_CHANNELS,
    "sampling_rate": SAMPLE_RATE,
}




class OobleckCodec:
    """Encode 44.1 kHz stereo to 64-channel latents at 1/2048 the rate, and back.

    Both directions run without autograd, at most ``max_batch`` items per VAE call (default 1 on CPU, 4 elsewhere),
    in ``dtype`` on ``device``, and return float32 tensors on ``device`` that are ordinary tensors (not inference-mode
    ones), so later autograd code may use them. Long signals run in tiles of ``tile_frames`` latent frames (None:
    whole), the same result (:data:`TILE_FRAMES`); the VAE's Snake layers are fused (:class:`FusedSnake`) and its
    weight norm computed once (:func:`freeze_weight_norm_`) unless ``fast_layers`` is False (diffusers' own layers).
    """

    def __init__(self, vae: AutoencoderOobleck, source: str, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, max_batch: int | None = None,
                 origin: CodecOrigin | None = None, tile_frames: int | None = TILE_FRAMES,
                 fast_layers: bool = True, compiled_snake: bool = False, conv_layout: str = "auto") -> None:
        cfg = dict(vae.config)
        problems = config_problems(cfg)
        if problems:
            raise CodecError(f"the Oobleck VAE from {source} does not fit SAMUeL: {'; '.join(problems)}")
        if not dtype.is_floating_point:
            raise ValueError(f"codec dtype must be a floating type, got {dtype}")
        self.source = source
        self.device = torch.device(device)
        if max_batch is None:
            max_batch = CPU_MAX_BATCH if self.device.type == "cpu" else GPU_MAX_BATCH
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if tile_frames is not None and tile_frames < 1:
            raise ValueError(f"tile_frames must be at least 1 (or None: untiled), got {tile_frames}")
        self.tile_frames = tile_frames
        self.dtype = dtype
        self.max_batch = int(max_batch)
        self.sample_rate = int(cfg["sampling_rate"])
        self.hop_length = math.prod(cfg["downsampling_ratios"])
        self.latent_channels = int(cfg["decoder_input_channels"])
        self.audio_channels = int(cfg["audio_channels"])
        # nn.Module.to, not diffusers' ModelMixin.to, which warns about casting on every call (even to float32)
        self.vae = torch.nn.Module.to(vae, device=self.device, dtype=dtype).eval().requires_grad_(False)
        if fast_layers:  # same parameters and outputs; False keeps diffusers' own layers (the benchmarks' baseline)
            self.conv_layout = speed_up_oobleck_(self.vae, compiled_snake=compiled_snake, conv_layout=conv_layout)
        else:
            self.conv_layout = "plain"
        self.fast_layers, self.compiled_snake = fast_layers, fast_layers and compiled_snake
        self._origin = origin or CodecOrigin()
        self._sha256: str | None = None

    @classmethod
    def load(cls, spec: str | os.PathLike[str] = DEFAULT_CODEC, *, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, max_batch: int | None = None,
             tile_frames: int | None = TILE_FRAMES, compiled_snake: bool = False) -> OobleckCodec:
        """Load the VAE from a folder, a stable-audio-tools checkpoint or a Hugging Face id (module docstring)."""

        source = os.fspath(spec)
        vae, origin = load_vae(source)
        return cls(vae, source, device=device, dtype=dtype, max_batch=max_batch, origin=origin,
                   tile_frames=tile_frames, compiled_snake=compiled_snake)

    def encode(self, audio: Tensor) -> Tensor:
        """Audio ``(B, 2, S)``, ``S`` a multiple of 2048, to the posterior mean ``(B, 64, S // 2048)``, float32."""
        _check_batch(audio, "audio", self.audio_channels, "S")
        if audio.shape[-1] % self.hop_length:
            raise ValueError(f"audio length {audio.shape[-1]} is not a multiple of the hop length {self.hop_length}; "
                             "pad or crop it first")
        # The mean, not a sample: latents of the same audio are then the same in every run.
        frames = audio.shape[-1] // self.hop_length
        encode = tiled(lambda x: self.vae.encode(x).latent_dist.mean, self.tile_frames, in_hop=self.hop_length,
                       out_hop=1)
        return self._run(audio, lambda x, _keep: encode(x), (self.latent_channels, frames))

    def decode(self, latents: Tensor, keep_frames: Sequence[int] | None = None) -> Tensor:
        """Latents ``(B, 64, T)`` to audio ``(B, 2, T * 2048)``, float32.

        ``keep_frames``: per item, how many leading latent frames' audio is wanted (a chunk padded past its input's
        end wants only its valid part). Tiles that start past it are not decoded and their audio is zero; the
        wanted audio equals a whole decode's (tiled; untiled decodes ignore it)."""
        _check_batch(latents, "latents", self.latent_channels, "T")
        if keep_frames is not None and len(keep_frames) != latents.shape[0]:
            raise ValueError(f"keep_frames names {len(keep_frames)} items for a batch of {latents.shape[0]}")

        def decode(z: Tensor, keep: int | None) -> Tensor:
            return tiled(lambda z: self.vae.decode(z).sample, self.tile_frames, in_hop=1, out_hop=self.hop_length,
                         keep_frames=keep)(z)

        return self._run(latents, decode, (self.audio_channels, latents.shape[-1] * self.hop_length), keep_frames)

    def _run(self, x: Tensor, step: Callable[[Tensor, int | None], Tensor], out_shape: tuple[int, int],
             keep_frames: Sequence[int] | None = None) -> Tensor:
        if x.shape[0] == 0:
            return torch.zeros((0, *out_shape), device=self.device)
        parts = []
        with torch.inference_mode(), self.heap():
            for first in range(0, x.shape[0], self.max_batch):
                chunk = x[first: first + self.max_batch]
                keep = None if keep_frames is None else max(keep_frames[first: first + self.max_batch])
                parts.append(step(chunk.to(device=self.device, dtype=self.dtype), keep))
        # Joined outside inference mode: the result is an ordinary tensor that a training step may save for backward.
        out = torch.cat(parts).float().contiguous()
        if tuple(out.shape[1:]) != out_shape:  # the strides' padding is exact for whole hops; guard anyway
            raise CodecError(f"the VAE from {self.source} returned {tuple(out.shape)}, expected (B, {out_shape[0]}, "
                             f"{out_shape[1]})")
        return out

    def heap(self) -> AbstractContextManager[Any]:
        """samuel.heap for this codec's work, and for a whole item around it (samuel.generate.Accompanist), by
        :func:`vae_heap`'s rule."""
        return vae_heap(self.device, tiled=self.tile_frames is not None)

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from, their sha256 (computed once, on first call) and the VAE config."""
        if self._sha256 is None and self._origin.weights_files:
            self._sha256 = files_sha256(self._origin.weights_files)
        return {
            "codec": "oobleck",
            "source": self.source,
            "resolved": self._origin.resolved,
            "format": self._origin.format,
            "weights_files": [str(p) for p in self._origin.weights_files],
            "weights_sha256": self._sha256,
            "config": _plain_config(self.vae.config),
            "random_weights": self._origin.random_weights,
            "dtype": str(self.dtype).removeprefix("torch."),
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "fast_layers": self.fast_layers,
            "compiled_snake": self.compiled_snake and compiled_snake() is not None,
            "conv_layout": self.conv_layout,
            "tile_frames": self.tile_frames,
            "tile_margin_frames": TILE_MARGIN_FRAMES if self.tile_frames is not None else None,
            **self._origin.notes,
        }


def vae_heap(device: torch.device, *, tiled: bool) -> AbstractContextManager[Any]:
    """samuel.heap around VAE work, where it pays: on a CPU the tiles' audio-rate activations (30-70 MB each) then
    stay on the malloc heap, with no page faults; untiled, the heap's fragmentation doubled the peak memory instead
    (see samuel.heap), so not then; nor off the CPU."""
    return heap_allocations() if device.type == "cpu" and tiled else nullcontext()


def tile_spans(frames: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Cut ``frames`` latent frames into tiles: ``(lo, start, stop, hi)`` per tile, where ``[start, stop)`` is the
    part it keeps and ``[lo, hi)`` the part it runs on (``margin`` frames of context either side, clipped to the
    signal). The kept parts cover ``[0, frames)`` once, in order."""
    if frames < 1 or tile < 1 or margin < 0:
        raise ValueError(f"need frames >= 1, tile >= 1, margin >= 0; got {frames}, {tile}, {margin}")
    return [(max(0, start - margin), start, min(frames, start + tile), min(frames, start + tile + margin))
            for start in range(0, frames, tile)]


def tiled(run: Callable[[Tensor], Tensor], tile_frames: int | None, *, in_hop: int, out_hop: int,
          margin: int = TILE_MARGIN_FRAMES, keep_frames: int | None = None) -> Callable[[Tensor], Tensor]:
    """``run`` (a VAE direction on ``(B, C, frames * in_hop)``, giving ``(B, C', frames * out_hop)``) applied tile by
    tile (:func:`tile_spans`) and joined; with ``tile_frames`` None, or a signal of one tile or less, ``run``
    itself. Tile edges sit on whole latent frames, so every strided layer keeps its phase.

    Two tiles whose inputs are both all zeros (the silence a chunk is padded with) and of the same length give the
    same output, so it is computed once: run is a function of its input alone. With ``keep_frames``, only the
    output's first ``keep_frames`` frames are wanted: tiles that start at or after it are not run, their output
    left zero; everything before it is what the whole run gives."""
    if tile_frames is None:
        return run

    def run_tiled(x: Tensor) -> Tensor:
        frames = x.shape[-1] // in_hop
        if frames <= tile_frames:
            return run(x)
        parts: list[Tensor] = []
        silent: dict[tuple[int, ...], Tensor] = {}  # a zero input's shape -> its output
        for lo, start, stop, hi in tile_spans(frames, tile_frames, margin):
            if keep_frames is not None and start >= keep_frames and parts:
                parts.append(parts[-1].new_zeros((*parts[-1].shape[:-1], (stop - start) * out_hop)))
                continue
            piece = x[..., lo * in_hop: hi * in_hop]
            if piece.any():
                out = run(piece)
            else:
                if piece.shape not in silent:
                    silent[piece.shape] = run(piece)
                out = silent[piece.shape]
            parts.append(out[..., (start - lo) * out_hop: (stop - lo) * out_hop])
        return torch.cat(parts, dim=-1)

    return run_tiled


class FusedSnake(torch.nn.Module):
    """Snake, x + 1 / (beta + 1e-9) * sin(alpha x)^2 (alpha, beta stored as logs), as diffusers' Snake1d computes it
    but in two passes over the activations instead of five: at audio rate Snake streams about 1 GB per layer and was
    31% of the decoder's time on a 2-core CPU. The same parameters under the same names, so state dicts, key maps and
    checksums are unchanged. ``compiled``: one pass, through a torch.compile'd kernel (:func:`compiled_snake`)."""

    def __init__(self, alpha: torch.nn.Parameter, beta: torch.nn.Parameter, logscale: bool = True) -> None:
        super().__init__()
        self.alpha, self.beta, self.logscale = alpha, beta, logscale
        self.compiled = False

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        x = x.reshape(shape[0], shape[1], -1)
        if self.compiled and self.logscale and not (torch.is_grad_enabled() and x.requires_grad):
            kernel = compiled_snake()
            if kernel is not None:
                return _snake_2d(kernel, x, self.alpha, self.beta).reshape(shape)
        alpha = torch.exp(self.alpha) if self.logscale else self.alpha
        beta = torch.exp(self.beta) if self.logscale else self.beta
        inv_beta = (beta + 1e-9).reciprocal()
        wave = torch.sin(alpha * x)
        if torch.is_grad_enabled() and wave.requires_grad:
            return torch.addcmul(x, wave.square(), inv_beta).reshape(shape)
        return torch.addcmul(x, wave.square_(), inv_beta).reshape(shape)  # in place: inference only


def _snake(x: Tensor, log_alpha: Tensor, log_beta: Tensor) -> Tensor:
    return x + (torch.exp(log_beta) + 1e-9).reciprocal() * torch.sin(torch.exp(log_alpha) * x).pow(2)


def _snake_2d(kernel: Callable[..., Tensor], x: Tensor, log_alpha: Tensor, log_beta: Tensor) -> Tensor:
    """``kernel`` on a 2-D contiguous view of ``x`` (B, C, L), so that one compiled graph per layout serves every
    width, length and batch (a 3-D input recompiled per channel count and hit dynamo's limit of 8): channels-last
    (B, C, L) as (B * L, C) rows with alpha per column, plain as (B * C, L) with alpha per row."""
    batch, channels, length = x.shape
    if is_channels_last_1d(x):
        rows = x.transpose(1, 2).reshape(batch * length, channels)
        out = kernel(rows, log_alpha.reshape(1, channels), log_beta.reshape(1, channels))
        return out.reshape(batch, length, channels).transpose(1, 2)
    rows = x.reshape(batch * channels, length)
    out = kernel(rows, log_alpha.reshape(1, channels, 1).expand(batch, channels, 1).reshape(-1, 1),
                 log_beta.reshape(1, channels, 1).expand(batch, channels, 1).reshape(-1, 1))
    return out.reshape(batch, channels, length)


_COMPILED_SNAKE: list[Callable[..., Tensor] | None] = []  # [] until first asked; [None] when compiling failed


def compiled_snake() -> Callable[[Tensor, Tensor, Tensor], Tensor] | None:
    """The Snake as one torch.compile'd kernel (dynamic shapes: one compile per process and dtype, cached on disk by
    inductor across processes), or None where it cannot be built (no C++ compiler, an unsupported device): the caller
    then runs the eager form, and a warning says so once. On 2 AMD EPYC cores it made a bf16 decode 1.2x faster."""
    if not _COMPILED_SNAKE:
        try:
            kernel = torch.compile(_snake, dynamic=True)
            probe = torch.zeros(2, 8)  # the 2-D form _snake_2d calls it with
            torch.testing.assert_close(kernel(probe + 0.5, probe[:, :1], probe[:, :1]),
                                       _snake(probe + 0.5, probe[:, :1], probe[:, :1]))
            _COMPILED_SNAKE.append(kernel)
        except Exception as err:  # the eager form is the same function; only slower
            import warnings

            warnings.warn(f"compiled Snake unavailable, running the eager form: {type(err).__name__}: {err}",
                          RuntimeWarning, stacklevel=2)
            _COMPILED_SNAKE.append(None)
    return _COMPILED_SNAKE[0]


def fuse_snake_(vae: torch.nn.Module, *, compiled: bool = False) -> torch.nn.Module:
    """Swap every diffusers Snake1d in ``vae`` for :class:`FusedSnake` (idempotent; returns ``vae``); ``compiled``
    sets each one's compiled flag."""
    from diffusers.models.autoencoders.autoencoder_oobleck import Snake1d

    for module in list(vae.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Snake1d):
                setattr(module, name, FusedSnake(child.alpha, child.beta, child.logscale))
    for module in vae.modules():
        if isinstance(module, FusedSnake):
            module.compiled = compiled
    return vae


def freeze_weight_norm_(vae: torch.nn.Module) -> torch.nn.Module:
    """Compute each weight-normed layer's weight once (w = g v / |v|, what torch's WeightNorm hook recomputes on
    every call) and drop the hook; for inference only (a later change to g or v is not seen). ``weight_g`` and
    ``weight_v`` stay the parameters (state dicts and counts unchanged); the weight is the same tensor value. A new
    weight tensor on every call also costs oneDNN its cached weight layout: freezing made a tiled bf16 decode 1.2x
    faster on 2 AMD EPYC cores, outputs identical."""
    from torch.nn.utils.weight_norm import WeightNorm

    for module in vae.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, WeightNorm):
                with torch.no_grad():
                    weight = hook.compute_weight(module).detach()
                del module._forward_pre_hooks[key]
                if hook.name in module.__dict__:  # the hook's last result, a plain attribute
                    delattr(module, hook.name)
                # a buffer, so later device and dtype moves carry it; not persistent: state dicts are unchanged
                module.register_buffer(hook.name, weight, persistent=False)
    return vae


def is_channels_last_1d(x: Tensor) -> bool:
    """Whether ``x`` (B, C, L) is stored time-major, channels innermost (strides (L * C, 1, C)): the layout the
    :class:`ChannelsLastConv1d` layers pass between them."""
    return x.ndim == 3 and x.shape[1] > 1 and x.stride(1) == 1 and x.stride(2) == x.shape[1]


def _as_nwc_4d(x: Tensor) -> Tensor:
    """(B, C, L) as the 4-D channels-last (B, C, 1, L) that oneDNN's fast convolutions take; a view when ``x`` is
    already channels-last, one copy otherwise (only at the VAE's input)."""
    x4 = x.unsqueeze(2)
    layout = torch.channels_last
    return x4 if x4.is_contiguous(memory_format=layout) else x4.contiguous(memory_format=layout)


class ChannelsLastConv1d(torch.nn.Conv1d):
    """A Conv1d run as a channels-last Conv2d over (B, C, 1, L), a 1x1 one as a GEMM over time-major rows: on an
    AMX Xeon oneDNN reorders plain (B, C, L) tensors on every call (40% of a bf16 decode), and the whole VAE ran
    about 2x faster in bf16 this way (see :func:`resolve_conv_layout` for where it is used). Input of either
    layout; output channels-last (see :func:`is_channels_last_1d`) unless ``plain_output``. Made by
    :func:`channels_last_convs_` from a frozen Conv1d (inference only); the parameters and state dict are the
    Conv1d's."""

    _nwc_weight: Tensor
    plain_output: bool
    _pointwise: bool

    def forward(self, x: Tensor) -> Tensor:
        if self._pointwise:  # a GEMM over time-major rows: oneDNN's 1x1 convolution reorders its output (AMX Xeon)
            rows = _as_nwc_4d(x).squeeze(2).transpose(1, 2)  # (B, L, C), contiguous
            y = torch.nn.functional.linear(rows, self._nwc_weight.reshape(self.out_channels, -1), self.bias)
            y = y.transpose(1, 2)
            return y.contiguous() if self.plain_output else y
        y = torch.nn.functional.conv2d(_as_nwc_4d(x), self._nwc_weight, self.bias, stride=(1, self.stride[0]),
                                       padding=(0, self.padding[0]), dilation=(1, self.dilation[0]),
                                       groups=self.groups).squeeze(2)
        return y.contiguous() if self.plain_output else y


class PolyphaseConvTranspose1d(torch.nn.ConvTranspose1d):
    """The Oobleck decoder's upsampling (kernel 2s, stride s, padding p) as one plain convolution: out[Q s + R] =
    x[Q] W[R] + x[Q - 1] W[s + R] for the uncropped output, i.e. a kernel-2 convolution with s * C_out channels,
    read back time-major. Channels ordered (R, c) make that read a view, with no shuffle copy. oneDNN's transposed
    convolution was 1.2-1.6x slower than this in bf16 (2 AMD EPYC cores, measured alone). Output channels-last."""

    _nwc_weight: Tensor

    def forward(self, x: Tensor) -> Tensor:
        stride, pad, out_channels = self.stride[0], self.padding[0], self.out_channels
        batch, length = x.shape[0], x.shape[-1]
        phases = torch.nn.functional.conv2d(torch.nn.functional.pad(_as_nwc_4d(x), (1, 1)), self._nwc_weight)
        full = phases.permute(0, 2, 3, 1).reshape(batch, (length + 1) * stride, out_channels)  # a view
        y = full[:, pad: (length + 1) * stride - pad].transpose(1, 2)
        return y if self.bias is None else y + self.bias[:, None]


def polyphase_weight(weight: Tensor, stride: int) -> Tensor:
    """ConvTranspose1d weight (C_in, C_out, 2 * stride) -> Conv1d weight (stride * C_out, C_in, 2) of
    :class:`PolyphaseConvTranspose1d`: output channel R * C_out + c has tap 0 on x[Q - 1] (W[:, c, stride + R])
    and tap 1 on x[Q] (W[:, c, R])."""
    c_in, c_out, kernel = weight.shape
    if kernel != 2 * stride:
        raise ValueError(f"polyphase form needs kernel 2 * stride, got kernel {kernel}, stride {stride}")
    taps = torch.stack([weight[:, :, stride:], weight[:, :, :stride]], dim=-1)  # (C_in, C_out, stride, 2)
    return taps.permute(2, 1, 0, 3).reshape(stride * c_out, c_in, 2)


def channels_last_convs_(vae: torch.nn.Module) -> torch.nn.Module:
    """Run every Conv1d of ``vae`` as :class:`ChannelsLastConv1d` and every upsampling ConvTranspose1d as
    :class:`PolyphaseConvTranspose1d`, in place (idempotent; returns ``vae``). The activations between them stay
    channels-last; the encoder's and decoder's last convolutions give plain tensors, so callers see the usual
    layout. Needs the weights frozen first (:func:`freeze_weight_norm_`): each layer's weight is laid out once."""
    from torch.nn.utils.weight_norm import WeightNorm

    outputs = {id(getattr(getattr(vae, part, None), "conv2", None)) for part in ("encoder", "decoder")}
    for module in vae.modules():
        kind = type(module)
        if kind not in (torch.nn.Conv1d, torch.nn.ConvTranspose1d):
            continue
        if any(isinstance(h, WeightNorm) for h in module._forward_pre_hooks.values()):
            raise ValueError("channels_last_convs_ needs the weight norm frozen first (freeze_weight_norm_)")
        weight = module.weight.detach()
        if kind is torch.nn.Conv1d:
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                continue  # not in the Oobleck VAE; left as it is
            module.__class__ = ChannelsLastConv1d
            module.plain_output = id(module) in outputs
            module._pointwise = (module.kernel_size[0] == 1 and module.stride[0] == 1 and module.groups == 1
                                 and module.padding[0] == 0)
        else:
            stride = module.stride[0]
            if (module.kernel_size[0] != 2 * stride or module.output_padding[0] or module.groups != 1
                    or module.dilation[0] != 1 or module.padding[0] > stride):
                continue
            weight = polyphase_weight(weight, stride)
            module.__class__ = PolyphaseConvTranspose1d
        module.register_buffer("_nwc_weight", weight.unsqueeze(2).contiguous(memory_format=torch.channels_last),
                               persistent=False)
    return vae


def speed_up_oobleck_(vae: torch.nn.Module, *, compiled_snake: bool = False, conv_layout: str = "auto") -> str:
    """An Oobleck VAE's inference fast layers, in place (after its last device or dtype move): the Snake fused
    (:func:`fuse_snake_`), the weight norm computed once (:func:`freeze_weight_norm_`) and, for the channels-last
    ``conv_layout`` (see :func:`resolve_conv_layout`), the convolutions run channels-last, the upsampling ones in
    polyphase form (:func:`channels_last_convs_`). The same parameters and, within float rounding, the same
    outputs. SAMUeL's codec, Stable Audio Open and ACE-Step all use it. Returns the layout it chose."""
    device = next(vae.parameters()).device
    layout = resolve_conv_layout(conv_layout, device)
    freeze_weight_norm_(fuse_snake_(vae, compiled=compiled_snake))
    if layout == "channels-last":
        channels_last_convs_(vae)
    return layout


def tile_decode_(vae: torch.nn.Module, tile_frames: int = TILE_FRAMES) -> str:
    """Make an Oobleck VAE's ``decode`` (as diffusers' pipelines call it) run tile by tile (:func:`tiled`), on the
    malloc heap on a CPU (samuel.heap), as SAMUeL's codec decodes: for Stable Audio Open, whose pipeline decodes a
    whole clip at once. Only for a VAE with this one's strides (hop 2048), for which TILE_MARGIN_FRAMES was measured;
    another is left untiled. Returns what it did, for a provenance record.

    Measured (bf16, the SAO VAE's size with fast layers, channels-last, AMX Xeon, 47.55 s): 28-34 s untiled, 30-32 s
    tiled without the heap, 19 s tiled on the heap; the audio was the same bits."""
    hop = math.prod(vae.config.downsampling_ratios)
    if hop != HOP_LENGTH:
        return f"decode untiled (hop {hop}: tiles' context measured for hop {HOP_LENGTH} only)"
    original = vae.decode
    device = next(vae.parameters()).device

    from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDecoderOutput

    def decode(z: Tensor, return_dict: bool = True, generator: Any = None) -> Any:
        run = tiled(lambda part: original(part).sample, tile_frames, in_hop=1, out_hop=hop)
        with vae_heap(device, tiled=True):
            audio = run(z)
        return OobleckDecoderOutput(sample=audio) if return_dict else (audio,)

    vae.decode = decode
    return f"decode tiled ({tile_frames} latent frames, {TILE_MARGIN_FRAMES} of context each side; samuel.codec)"


def fast_layers_label(conv_layout: str, compiled: bool = False) -> str:
    """What :func:`speed_up_oobleck_` did to a VAE, for a provenance record (the adapters that run an Oobleck VAE
    inside a diffusers pipeline); ``compiled``: whether the Snake was asked to run as one compiled kernel (the label
    says whether it could be built)."""
    snake = "Snake layers fused"
    if compiled:
        snake += " (one compiled kernel)" if compiled_snake() is not None else " (compiled kernel unavailable: eager)"
    return f"{snake}, weight norm computed once, convolutions {conv_layout} (samuel.codec)"


def speed_up_pipeline_vae_(vae: torch.nn.Module, dtype: torch.dtype) -> str:
    """:func:`speed_up_oobleck_` for the VAE inside a diffusers pipeline, as SAMUeL's codec is set up for the same
    precision (samuel.generate, baselines.samuel_adapter): the Snake compiled in bf16, where its one compile pays.
    Returns :func:`fast_layers_label`'s record."""
    compiled = dtype == torch.bfloat16
    return fast_layers_label(speed_up_oobleck_(vae, compiled_snake=compiled), compiled)


def randomise_snake_(vae: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    """Give every Snake layer its own alpha and beta (they start equal, at zero), from the current RNG.

    For random-weight VAEs: the output then depends on every layer, as a trained one's does, and any mix-up of two
    layers in a key mapping changes the output.
    """
    with torch.no_grad():
        for name, param in vae.named_parameters():
            if name.endswith((".alpha", ".beta")):
                param.normal_(0.0, std)
    return vae


def random_oobleck_codec(*, seed: int = 0, device: str | torch.device = "cpu", tiny: bool = False,
                         dtype: torch.dtype = torch.float32, compiled_snake: bool = False) -> OobleckCodec:
    """The Stable Audio Open VAE architecture (AutoencoderOobleck's defaults) with seeded random weights, or with
    ``tiny`` the :data:`TINY_OOBLECK_CONFIG` twin (real strides and latent width, tiny widths).

    For timing, parameter counts and tests only; its provenance says ``random_weights: True``.
    """
    oobleck = oobleck_class()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with quiet_library_warnings():
            vae = randomise_snake_(oobleck(**TINY_OOBLECK_CONFIG) if tiny else oobleck())
    return OobleckCodec(vae, f"random init{' (tiny)' if tiny else ''} (seed {seed})", device=device, dtype=dtype,
                        compiled_snake=compiled_snake,
                        origin=CodecOrigin(format="in-memory", random_weights=True, notes={"seed": seed}))


def save_tiny_random_oobleck(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Save a seeded random :data:`TINY_OOBLECK_CONFIG` VAE with ``save_pretrained`` (diffusers format) to ``path``.

    For tests and benchmarks: the real strides, hop and latent width, tiny weights, meaningless sound. A marker file
    makes :meth:`OobleckCodec.provenance` report ``random_weights: True``.
    """
    path = Path(path)
    oobleck = oobleck_class()
    with torch.random.fork_rng(devices=[]), quiet_library_warnings():  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        vae = randomise_snake_(oobleck(**TINY_OOBLECK_CONFIG))
    vae.save_pretrained(path, safe_serialization=True)
    marker = {"random_weights": True, "seed": seed, "made_by": "samuel.codec.save_tiny_random_oobleck"}
    (path / RANDOM_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return path



# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _check_batch(x: Tensor, name: str, channels: int, length: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[1] != channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, {channels}, {length}), got {shape}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} is empty along time")


def _plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers FrozenDict config as JSON-ready plain data, without diffusers' private keys."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(config).items() if not k.startswith("_")}


