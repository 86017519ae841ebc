"""Sample-rate conversion by a named method: arrays in, arrays out, no files and no models.

The resampler is part of what an embedding or a learned score means, so it is chosen by name and recorded:

- ``"soxr"``: libsoxr at quality ``VHQ`` (as :mod:`samuel.audio`): a steep linear-phase filter, passband flat to
  ~0.9 of the lower Nyquist, stopband far below float32 rounding. The default, and what this code always did.
- ``"torchaudio-default"``: ``torchaudio.functional.resample(x, orig, new)`` with its defaults
  (``sinc_interp_hann``, ``lowpass_filter_width=6``, ``rolloff=0.99``): what audiobox-aesthetics' ``infer.py``
  uses. Its short Hann-windowed sinc puts the cutoff at 0.99 of the lower Nyquist with a wide transition band, so
  it rolls off the top of the passband and lets tones just above the new Nyquist alias back in (see docs).
- ``"torchaudio-kaiser-best"``: the same algorithm with ``sinc_interp_kaiser``, ``lowpass_filter_width=64``,
  ``rolloff=0.9475937167399596``, ``beta=14.769656459379492`` (resampy's ``kaiser_best``): what fadtk has used
  since Oct 2023 (``FrechetAudioDistance.load_audio``) before writing a 16-bit WAV.

The two torchaudio methods are our own re-implementation of torchaudio's windowed-sinc polyphase resampler
(``_get_sinc_resample_kernel`` / ``_apply_sinc_resample_kernel`` in ``torchaudio/functional/functional.py``,
after Smith's bandlimited interpolation, https://ccrma.stanford.edu/~jos/resample/); torchaudio itself cannot be
installed here. With the rates reduced by their gcd to L (input) and M (output) and f_c = rolloff * min(L, M):

    y[j] = sum_i x[i] k(i / L - j / M),   k(tau) = (f_c / L) sinc(f_c tau) w(f_c tau / W)  for |f_c tau| <= W, else 0

with sinc(u) = sin(pi u) / (pi u), W = lowpass_filter_width, and w(v) = cos^2(pi v / 2) (Hann) or
I0(beta sqrt(1 - v^2)) / I0(beta) (Kaiser). Output j = q M + m uses kernel phase m on input block q, so the
kernel is an (M, 2w + L) matrix with w = ceil(W L / f_c) and the output has ceil(M * length / L) samples, that
quotient rounded to float32 first as torchaudio does (``torch.as_tensor`` of a Python float). As in torchaudio the
kernel is computed in the input's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr

SOXR_QUALITY = "VHQ"  # as samuel.audio: the resampler never limits fidelity, and it is deterministic
KERNEL_BLOCK_ELEMENTS = 1 << 22  # kernel entries built at once: a rate pair with a small gcd has a huge kernel


@dataclass(frozen=True)
class SincSpec:
    """The parameters of torchaudio's windowed-sinc resampler."""

    window: str  # "hann" (sinc_interp_hann) or "kaiser" (sinc_interp_kaiser)
    lowpass_filter_width: int  # W: zero crossings of the sinc kept on each side
    rolloff: float  # cutoff as a fraction of the lower Nyquist
    beta: float | None = None  # Kaiser shape (kaiser only)

    def __post_init__(self) -> None:
        if self.window not in ("hann", "kaiser"):
            raise ValueError(f"window must be 'hann' or 'kaiser', got {self.window!r}")
        if self.lowpass_filter_width <= 0:
            raise ValueError(f"lowpass_filter_width must be positive, got {self.lowpass_filter_width}")
        if not 0.0 < self.rolloff <= 1.0:
            raise ValueError(f"rolloff must be in (0, 1], got {self.rolloff}")
        if (self.beta is None) != (self.window == "hann"):
            raise ValueError("beta is the Kaiser window's shape: give it for 'kaiser' and only for it")

    def describe(self) -> str:
        method = "sinc_interp_hann" if self.window == "hann" else f"sinc_interp_kaiser beta={self.beta!r}"
        return f"{method}, lowpass_filter_width={self.lowpass_filter_width}, rolloff={self.rolloff!r}"


SINC_SPECS: dict[str, SincSpec] = {
    "torchaudio-default": SincSpec("hann", 6, 0.99),  # torchaudio.functional.resample's defaults
    "torchaudio-kaiser-best": SincSpec("kaiser", 64, 0.9475937167399596, 14.769656459379492),  # fadtk's
}
RESAMPLERS: tuple[str, ...] = ("soxr", *SINC_SPECS)
DEFAULT_RESAMPLER = "soxr"


def check_resampler(method: str) -> str:
    """``method`` if it names a resampler, else ValueError listing the choices."""
    if method not in RESAMPLERS:
        raise ValueError(f"unknown resampler {method!r}; choose one of {', '.join(RESAMPLERS)}")
    return method


def describe_resampler(method: str) -> str:
    """One line naming the method and every parameter that changes its output (for identities and docs)."""
    check_resampler(method)
    if method == "soxr":
        return f"soxr {SOXR_QUALITY}"
    return f"{method} (torchaudio windowed sinc re-implemented: {SINC_SPECS[method].describe()})"


def resample(x: np.ndarray, orig_rate: int, new_rate: int, method: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """Resample the last axis of ``x`` from ``orig_rate`` to ``new_rate`` with ``method``.

    Args:
        x: (..., samples) float32 or float64; every row is resampled independently.
        orig_rate, new_rate: positive integer rates in Hz.
        method: one of :data:`RESAMPLERS`.

    Returns:
        (..., samples') in the dtype of ``x``; a copy of ``x`` when the rates are equal. samples' is soxr's own
        output length for ``"soxr"`` and :func:`sinc_output_length` for the torchaudio methods.
    """
    check_resampler(method)
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError("x must have a samples axis")
    orig_rate, new_rate = _check_rate(orig_rate), _check_rate(new_rate)
    if orig_rate == new_rate:
        return x.copy()
    if method == "soxr":
        return _soxr(x, orig_rate, new_rate)
    return sinc_resample(x, orig_rate, new_rate, SINC_SPECS[method])


def _check_rate(rate: int) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise ValueError(f"sample rates must be positive integers in Hz, got {rate!r}")
    return int(rate)


def _soxr(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    if x.ndim == 1:
        return soxr.resample(x, orig_rate, new_rate, quality=SOXR_QUALITY)
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T)  # soxr reads (frames, channels)
    out = soxr.resample(rows, orig_rate, new_rate, quality=SOXR_QUALITY)
    return np.ascontiguousarray(out.T).reshape(*x.shape[:-1], out.shape[0])


# -- torchaudio's windowed-sinc resampler, re-implemented --------------------------------------------------------


def reduced_rates(orig_rate: int, new_rate: int) -> tuple[int, int]:
    """(L, M): the two rates divided by their gcd (44100, 16000 -> 441, 160)."""
    g = math.gcd(orig_rate, new_rate)
    return orig_rate // g, new_rate // g


def kernel_width(orig_rate: int, new_rate: int, spec: SincSpec) -> int:
    """w = ceil(W L / f_c): input samples each side of the block that a kernel phase reaches."""
    low, high = reduced_rates(orig_rate, new_rate)
    return math.ceil(spec.lowpass_filter_width * low / (min(low, high) * spec.rolloff))


def sinc_resample_kernel(orig_rate: int, new_rate: int, spec: SincSpec,
                         dtype: np.dtype | type = np.float64) -> tuple[np.ndarray, int]:
    """The polyphase kernel of the module docstring's formula, and its width.

    Returns:
        ``kernel`` (M, 2w + L) in ``dtype``: row m, column n is k((n - w) / L - m / M); and ``w``.
    """
    low, high = reduced_rates(_check_rate(orig_rate), _check_rate(new_rate))
    return _kernel_rows(low, high, spec, np.dtype(dtype).name, 0, high), kernel_width(orig_rate, new_rate, spec)


@lru_cache(maxsize=8)
def _whole_kernel(low: int, high: int, spec: SincSpec, dtype_name: str) -> np.ndarray:
    """The kernel of a common rate pair, built once (at most KERNEL_BLOCK_ELEMENTS entries, so the cache stays
    small)."""
    return _kernel_rows(low, high, spec, dtype_name, 0, high)


def _kernel_rows(low: int, high: int, spec: SincSpec, dtype_name: str, start: int, stop: int) -> np.ndarray:
    """Rows (phases) ``start:stop`` of the kernel for reduced rates (L, M) = (low, high), read-only.

    The operations follow torchaudio's order in the kernel's dtype, so float32 kernels round as its do.
    """
    dtype = np.dtype(dtype_name).type
    width = kernel_width(low, high, spec)
    lpw = spec.lowpass_filter_width
    base = min(low, high) * spec.rolloff  # f_c, in reduced-rate units
    taps = np.arange(-width, width + low, dtype=dtype) / dtype(low)  # (2w + L,) input offsets / L
    phases = -np.arange(start, stop, dtype=dtype)[:, None] / dtype(high)  # (rows, 1): -m / M
    t = np.clip((phases + taps) * dtype(base), -lpw, lpw).astype(dtype)  # f_c tau, clamped to the support
    if spec.window == "hann":
        window = np.cos(t * dtype(math.pi) / dtype(lpw) / dtype(2)) ** 2
    else:
        window = (np.i0(dtype(spec.beta) * np.sqrt(1 - (t / dtype(lpw)) ** 2)) / np.i0(dtype(spec.beta))).astype(dtype)
    t = t * dtype(math.pi)
    safe = np.where(t == 0, dtype(1), t)
    kernel = np.where(t == 0, dtype(1), np.sin(safe) / safe) * (window * dtype(base / low))
    kernel = kernel.astype(dtype, copy=False)
    kernel.flags.writeable = False
    return kernel


def sinc_output_length(length: int, orig_rate: int, new_rate: int) -> int:
    """torchaudio's output length: ceil(M * length / L), the quotient rounded to float32 before the ceiling.

    The float32 step drops the last sample of an input whose quotient lies just above an integer, by less than
    half a float32 step: at 44.1 -> 16 kHz none below 180,697 samples (4.1 s), then a share that grows with the
    length (1 in 441 lengths at 4-8 s, 3% at 47 s). torchaudio does so, so this does too.
    """
    low, high = reduced_rates(orig_rate, new_rate)
    return int(np.ceil(np.float32(high * length / low)))


def sinc_resample(x: np.ndarray, orig_rate: int, new_rate: int, spec: SincSpec) -> np.ndarray:
    """torchaudio's windowed-sinc resampling of the last axis of ``x`` (float32 or float64), in its dtype.

    The input is zero-padded by w before and w + L after; block q (L samples from q L) times the kernel gives
    outputs q M .. q M + M - 1 (torchaudio's strided ``conv1d``); the result is cut to :func:`sinc_output_length`.
    """
    x = np.asarray(x)
    dtype = x.dtype
    low, high = reduced_rates(orig_rate, new_rate)
    width = kernel_width(orig_rate, new_rate, spec)
    length = x.shape[-1]
    rows = x.reshape(-1, length)  # (C, S)
    padded = np.pad(rows, ((0, 0), (width, width + low)))
    blocks = np.lib.stride_tricks.sliding_window_view(padded, 2 * width + low, axis=-1)[:, ::low]  # (C, S//L+1, 2w+L)
    chunk = max(1, KERNEL_BLOCK_ELEMENTS // (2 * width + low))  # phases per block of kernel rows
    if chunk >= high:
        out = blocks @ _whole_kernel(low, high, spec, dtype.name).T  # (C, blocks, M)
    else:
        out = np.empty((rows.shape[0], blocks.shape[1], high), dtype=dtype)
        for start in range(0, high, chunk):
            stop = min(high, start + chunk)
            out[:, :, start:stop] = blocks @ _kernel_rows(low, high, spec, dtype.name, start, stop).T
    target = sinc_output_length(length, orig_rate, new_rate)
    return out.reshape(rows.shape[0], -1)[:, :target].reshape(*x.shape[:-1], target)
