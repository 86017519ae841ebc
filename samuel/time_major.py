"""SAMUeL's network run time-major: activations (B, T, C), every convolution one GEMM over weights packed once.

The same function as :class:`samuel.model.SAMUeL` (same parameters; equal outputs up to float rounding, which the
tests check in float64), laid out for a CPU. Channel-major, each 1-D convolution goes through oneDNN, which
reorders its plain (B, C, T) input and output to and from a blocked layout at every call; at this network's sizes
(B = 2, 64-512 channels) that costs as much as the arithmetic. Time-major, a frame's channels are contiguous, so:

- a kernel-3 convolution is one GEMM of the frames unfolded with their neighbours, (B T, 3 C_in) @ (3 C_in, C_out),
  the unfolded rows read from the zero-padded input with an overlapping stride and copied once;
- the stride-2 downsampling is that GEMM over every second frame; the transposed (upsampling) convolution is one
  GEMM of each frame with its two neighbours into the pair of frames it produces (:func:`pack_transposed_conv`);
- a 1x1 convolution is a plain GEMM, its bias and a following residual added by ``addmm``;
- GroupNorm runs on the (B, C, 1, T) channels-last view of the same memory, which torch's kernel keeps channels-last.

Weights are packed once, when the executor is built (like a low-precision twin). Inference only.
Eager, this ran SAMUeL's bf16 forward 1.1-1.2x and its denoiser step 1.1-1.3x faster than the channel-major twin on
an AMX Xeon; under ``torch.compile`` (inductor fuses the normalisations, activations, FiLM and unfolds around the
GEMMs) the forward 1.5-1.6x (docs/benchmarks.md, "Speed, fifth pass").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samuel.attention import ContextKV, apply_rope, local_window_mask, mixing_weights
from samuel.config import SAMUeLConfig
from samuel.model import Condition, SAMUeL, timestep_features


# --- Pure functions on time-major tensors ------------------------------------------------------------------------
def pack_conv(weight: Tensor) -> Tensor:
    """Conv1d weight (C_out, C_in, k) -> (k C_in, C_out), rows tap by tap: the GEMM weight of :func:`unfold3`'s
    rows (k = 3: frames t-1, t, t+1) or of the frames themselves (k = 1)."""
    return weight.permute(2, 1, 0).reshape(-1, weight.shape[0]).contiguous()


def pack_transposed_conv(weight: Tensor) -> Tensor:
    """ConvTranspose1d(kernel 4, stride 2, padding 1) weight (C_in, C_out, 4) -> (3 C_in, 2 C_out).

    Output frame j takes input frame i through tap k where j = 2 i - 1 + k, so output frames 2m and 2m + 1 both
    read input frames m - 1, m, m + 1 (:func:`unfold3`'s rows): 2m from (m - 1, tap 3) and (m, tap 1), 2m + 1 from
    (m, tap 2) and (m + 1, tap 0). The other two of the six blocks are zero.
    """
    c_in, c_out, k = weight.shape
    if k != 4:
        raise ValueError(f"expected a kernel-4 transposed convolution, got kernel {k}")
    packed = weight.new_zeros(3, c_in, 2, c_out)
    packed[0, :, 0], packed[1, :, 0] = weight[:, :, 3], weight[:, :, 1]
    packed[1, :, 1], packed[2, :, 1] = weight[:, :, 2], weight[:, :, 0]
    return packed.reshape(3 * c_in, 2 * c_out)


def unfold3(x: Tensor, stride: int = 1) -> Tensor:
    """(B, T, C) -> (B T', 3 C), T' = ceil(T / stride): output frame i's input frames s i - 1, s i, s i + 1
    side by side, zero beyond the ends (a kernel-3, padding-1 convolution's receptive field)."""
    b, t, c = x.shape
    padded = F.pad(x, (0, 0, 1, 1))
    frames = (t - 1) // stride + 1
    return padded.as_strided((b, frames, 3 * c), ((t + 2) * c, stride * c, 1)).reshape(b * frames, 3 * c)


def group_norm_time_major(x: Tensor, norm: nn.GroupNorm) -> Tensor:
    """``norm`` applied to x (B, T, C): on the (B, C, 1, T) channels-last view of the same memory, which torch's
    GroupNorm kernel reads in place and answers channels-last, i.e. (B, T, C) again."""
    y = F.group_norm(x.transpose(1, 2).unsqueeze(2), norm.num_groups, norm.weight, norm.bias, norm.eps)
    return y.squeeze(2).transpose(1, 2)


class _Gemm(NamedTuple):
    weight: Tensor  # (k C_in, C_out)
    bias: Tensor  # (C_out,)
    kind: str  # "1x1", "conv3", "down", "up"


def _apply(layer: _Gemm, x: Tensor, residual: Tensor | None = None) -> Tensor:
    """One packed layer on x (B, T, C_in) -> (B, T', C_out), plus ``residual`` (B, T', C_out) when given."""
    b, t, c = x.shape
    if layer.kind == "1x1":
        rows, frames = x.reshape(b * t, c), t
    else:
        rows = unfold3(x, stride=2 if layer.kind == "down" else 1)
        frames = rows.shape[0] // b
    bias = layer.bias if residual is None else residual.reshape(b * frames, -1) + layer.bias
    out = torch.addmm(bias, rows, layer.weight).view(b, frames, -1)
    return out.view(b, 2 * frames, -1) if layer.kind == "up" else out


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, H D) -> (B, H, T, D), contiguous (the CPU's fused attention takes strided bf16 input 5-7x slower)."""
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2).contiguous()


# --- The executor ------------------------------------------------------------------------------------------------
class TimeMajorSAMUeL:
    """``TimeMajorSAMUeL(model)`` computes what ``model`` does (``encode_condition``, ``denoise``,
    ``__call__`` = forward), in the parameters' dtype, time-major. It keeps packed copies of the weights and reads
    the normalisations, the timestep MLP and the tables from ``model`` (whose parameters must not change after)."""

    def __init__(self, model: SAMUeL) -> None:
        self.model = model.eval()
        self.config: SAMUeLConfig = model.config
        self.dtype = model.dtype
        self.layers: dict[str, _Gemm] = {}
        # looked up once here, not by name at every step
        self.modules: dict[str, nn.Module] = dict(model.named_modules())
        self.conditioned = _conditioned_names(model)
        with torch.no_grad():
            for name, module in model.named_modules():
                if isinstance(module, nn.ConvTranspose1d):
                    self.layers[name] = _Gemm(pack_transposed_conv(module.weight), module.bias.repeat(2), "up")
                elif isinstance(module, nn.Conv1d):
                    k, stride = module.kernel_size[0], module.stride[0]
                    kind = {(1, 1): "1x1", (3, 1): "conv3", (3, 2): "down"}.get((k, stride))
                    if kind is None or module.padding[0] != k // 2:
                        raise ValueError(f"{name}: no time-major form for kernel {k}, stride {stride}, "
                                         f"padding {module.padding[0]}")
                    self.layers[name] = _Gemm(pack_conv(module.weight), module.bias, kind)
        self._converted: tuple[Condition, tuple[Tensor, ...]] | None = None

    # -- blocks ------------------------------------------------------------------------------------------------
    def _res(self, name: str, x: Tensor, embed: Tensor | None = None, vocal_film: Tensor | None = None) -> Tensor:
        """:class:`samuel.model.FiLMResBlock` on (B, T, C); vocal_film (B, T, 2 C_out) time-major."""
        block = self.modules[name]
        h = _apply(self.layers[f"{name}.conv1"], F.silu(group_norm_time_major(x, block.norm1)))
        h = group_norm_time_major(h, block.norm2)
        if block.film is not None:
            if embed is None:
                raise ValueError("this block is FiLM-conditioned and needs a timestep embedding")
            modulation = F.linear(embed, block.film.weight, block.film.bias).unsqueeze(1)  # (B, 1, 2C)
            if vocal_film is not None:
                modulation = modulation + vocal_film
            gamma, beta = modulation.chunk(2, dim=-1)
            h = torch.addcmul(beta, h, 1 + gamma)
        skip = self.layers.get(f"{name}.skip")
        residual = x if skip is None else _apply(skip, x)
        return _apply(self.layers[f"{name}.conv2"], F.silu(h), residual=residual)

    def _attention(self, name: str, x: Tensor, w_global: Tensor, w_local: Tensor, cos: Tensor, sin: Tensor,
                   context: ContextKV | None = None) -> Tensor:
        """:class:`samuel.attention.SoftAlignmentAttention` on (B, T, C) (paper Eqs. 1-3)."""
        module = self.modules[name]
        b, t, _ = x.shape
        h = group_norm_time_major(x, module.norm)
        if module.is_cross:
            if context is None:
                raise ValueError("cross-attention needs a projected context")
            q = _heads(_apply(self.layers[f"{name}.to_q"], h), module.heads)
            k, k_rope, v = context
        else:
            qkv = _apply(self.layers[f"{name}.to_qkv"], h).view(b, t, 3, module.heads, module.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).contiguous().unbind(0)
            k_rope = apply_rope(k, cos, sin)
        if k.shape[-2] != t:
            raise ValueError(f"context has {k.shape[-2]} frames but x has {t}: vocal and accompaniment must align")
        local = F.scaled_dot_product_attention(q, k, v, attn_mask=local_window_mask(t, module.radius, q.device))
        glob = F.scaled_dot_product_attention(apply_rope(q, cos, sin), k_rope, v)
        mixed = w_global.view(b, 1, 1, 1) * glob + w_local.view(b, 1, 1, 1) * local
        return _apply(self.layers[f"{name}.to_out"], mixed.transpose(1, 2).reshape(b, t, -1), residual=x)

    def _project_context(self, name: str, feats: Tensor, cos: Tensor, sin: Tensor) -> ContextKV:
        module = self.modules[name]
        kv = _apply(self.layers[f"{name}.to_kv"], group_norm_time_major(feats, module.context_norm))
        k, v = (_heads(z, module.heads) for z in kv.chunk(2, dim=-1))
        return ContextKV(k, apply_rope(k, cos, sin), v)

    # -- public API (as SAMUeL's) -----------------------------------------------------------------------------
    def encode_condition(self, vocal: Tensor | None, keep_condition: Tensor | None = None, *, batch_size: int = 1,
                         frames: int = 0) -> Condition:
        """As :meth:`SAMUeL.encode_condition`; the FiLM offsets come back time-major (``Condition.layout``)."""
        model = self.model
        vocal = model.condition_input(vocal, keep_condition, batch_size=batch_size, frames=frames)
        h = _apply(self.layers["vocal_encoder.stem"], vocal.to(self.dtype).transpose(1, 2).contiguous())
        feats = []
        for level in range(len(model.vocal_encoder.blocks)):
            h = self._res(f"vocal_encoder.blocks.{level}", h)
            feats.append(h)
            if level < len(model.vocal_encoder.downs):
                h = _apply(self.layers[f"vocal_encoder.downs.{level}"], h)
        cos, sin = model._rope(vocal.shape[-1])
        names = self.conditioned
        return Condition(
            contexts=tuple(self._project_context(name, feats[lvl], cos, sin) for name, lvl in names.cross),
            films=tuple(_apply(self.layers[f"{name}.vocal_film"], feats[lvl]) for name, lvl in names.films),
            layout="time-major",
        )

    def time_major_condition(self, condition: Condition) -> Condition:
        """``condition`` with its FiLM offsets time-major: converted once per clip (the last one is kept), not per
        step, and outside :meth:`denoise_time_major`, so that a compiled step sees one kind of input."""
        if condition.layout == "time-major":
            return condition
        if self._converted is None or self._converted[0] is not condition:
            films = tuple(f.transpose(1, 2).contiguous() for f in condition.films)
            self._converted = (condition, Condition(condition.contexts, films, "time-major"))
        return self._converted[1]

    def denoise(self, x_t: Tensor, t: Tensor, condition: Condition) -> Tensor:
        """As :meth:`SAMUeL.denoise`: x_t (B, 64, T) -> v (B, 64, T), either layout of condition."""
        return self.denoise_time_major(x_t, t, self.time_major_condition(condition))

    def denoise_time_major(self, x_t: Tensor, t: Tensor, condition: Condition) -> Tensor:
        """:meth:`denoise` for a time-major condition: the step that ``torch.compile`` takes (it reads no state of
        this object that changes between clips, so a new clip does not recompile it)."""
        if condition.layout != "time-major":
            raise ValueError("denoise_time_major takes a time-major condition (time_major_condition)")
        model = self.model
        model._check_denoise_inputs(x_t, t, condition)
        frames = x_t.shape[-1]
        t = t.to(x_t.device)
        embed = F.silu(model.time_mlp(timestep_features(t).to(self.dtype)))
        w_global, w_local = (w.to(self.dtype) for w in mixing_weights(self.config.mixing, t, model.alpha_bar))
        cos, sin = model._rope(frames)
        contexts, films = iter(condition.contexts), iter(condition.films)

        h = _apply(self.layers["stem"], x_t.to(self.dtype).transpose(1, 2).contiguous())
        skips = []
        for i, level in enumerate(model.encoder):
            h = self._res(f"encoder.{i}.res", h, embed, next(films))
            if level.cross is not None:
                h = self._attention(f"encoder.{i}.cross", h, w_global, w_local, cos, sin, next(contexts))
            skips.append(h)
            h = _apply(self.layers[f"encoder.{i}.down"], h)
        h = self._res("bottleneck.res_in", h, embed, next(films))
        h = self._attention("bottleneck.self_attn", h, w_global, w_local, cos, sin)
        if model.bottleneck.cross is not None:
            h = self._attention("bottleneck.cross", h, w_global, w_local, cos, sin, next(contexts))
        h = self._res("bottleneck.res_out", h, embed, next(films))
        for i, level in enumerate(model.decoder):
            up = _apply(self.layers[f"decoder.{i}.up"], h)
            h = self._res(f"decoder.{i}.res", torch.cat([up, skips.pop()], dim=-1), embed, next(films))
            if level.cross is not None:
                h = self._attention(f"decoder.{i}.cross", h, w_global, w_local, cos, sin, next(contexts))
        v = _apply(self.layers["head.1"], group_norm_time_major(h, model.head[0]))
        return v.transpose(1, 2)

    def __call__(self, x_t: Tensor, t: Tensor, vocal: Tensor | None = None, *,
                 keep_condition: Tensor | None = None) -> Tensor:
        """As ``SAMUeL.forward``."""
        self.model._check_forward_inputs(x_t, t, vocal)
        condition = self.encode_condition(vocal, keep_condition, batch_size=x_t.shape[0], frames=x_t.shape[-1])
        return self.denoise(x_t, t, condition)


class _Names(NamedTuple):
    cross: list[tuple[str, int]]
    films: list[tuple[str, int]]


def _conditioned_names(model: SAMUeL) -> _Names:
    """SAMUeL._conditioned_modules as qualified module names, in the order denoise uses them."""
    names = {id(m): n for n, m in model.named_modules()}
    cross, films = model._conditioned_modules()
    return _Names([(names[id(m)], lvl) for m, lvl in cross], [(names[id(m)], lvl) for m, lvl in films])


