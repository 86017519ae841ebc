"""The one interface every FAD embedding backend sits behind: cheap construction, lazy weights, ``embed``.

An embedder is built from its registry name, a :class:`~baselines.base.WeightsChoice` and a device. The
constructor imports nothing heavy and touches no file; :attr:`Embedder.status` looks for the weights (a local path
or the Hugging Face cache, never the network) without loading them; :meth:`Embedder.load` builds the model (the
first :meth:`Embedder.embed` calls it). Unlike a generator, an embedder never falls back to random weights on its
own: ``auto`` with no weights found raises :class:`~baselines.base.WeightsNotFoundError`, because a FAD measured
with a random embedder is meaningless. Random init happens only when asked for (``mode="random"``), for timing
and tests, and its status says RANDOM.

:meth:`Embedder.identity` names everything an embedding depends on (embedder, checkpoint digest, preprocessing,
code version); the embedding cache keys on it, so a different checkpoint or option never serves a stale result.
The resampler to the model's rate (``resampler``, a :data:`bench.resample.RESAMPLERS` name, soxr by default) is
one of those options.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from baselines.base import WeightsChoice, WeightsNotFoundError, WeightsStatus
from baselines.weights import Resolved, resolve_hub_weights
from bench.embedders.features import prepare_waveform
from bench.resample import DEFAULT_RESAMPLER, check_resampler, describe_resampler

RANDOM_SEED = 0  # random init is seeded, so a random embedder is the same network on every run


class Embedder(ABC):
    """A FAD embedding backend. Subclasses set the class attributes and implement the abstract methods.

    ``__init__`` stays cheap: no heavy import, no file read, no weights.
    """

    name: str = ""  # registry name, and the model key of fadtk statistics files ("vggish", "clap-laion-music")
    sample_rate: int = 0  # the rate the model reads; embed() resamples to it
    dim: int = 0  # embedding size (checked against the loaded config)
    code_version: str = "1"  # bump when a change in this code changes embeddings: it invalidates cached ones

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu",
                 resampler: str = DEFAULT_RESAMPLER, **options: Any) -> None:
        self.weights = weights or WeightsChoice()
        self.device = device
        self.resampler = check_resampler(resampler)
        self.options = options if resampler == DEFAULT_RESAMPLER else {**options, "resampler": resampler}
        self._status: WeightsStatus | None = None
        self._resolved: Resolved | None = None
        self._loaded = False

    # -- weights -------------------------------------------------------------------------------------------
    @property
    def status(self) -> WeightsStatus:
        """The weights this embedder uses (resolved on first use; cheap: looks, does not load)."""
        if self._resolved is None:
            self._resolved = self.resolve_weights()
        return self._resolved.status

    @abstractmethod
    def resolve_weights(self) -> Resolved:
        """Find the weights per ``self.weights`` without loading them; raise WeightsNotFoundError on a miss."""

    def _resolve_hub(self, *, default_repo: str, marker_files: tuple[str, ...], how_to_get: str) -> Resolved:
        """:func:`resolve_hub_weights` with the embedder rule: ``auto`` never falls back to random init."""
        mode = "random" if self.weights.mode == "random" else "pretrained"
        return resolve_hub_weights(WeightsChoice(mode, self.weights.source), model=self.name,
                                   default_repo=default_repo, marker_files=marker_files, how_to_get=how_to_get,
                                   random_seed=RANDOM_SEED)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def load(self) -> None:
        """Build the model and put it on the device (idempotent)."""
        if not self._loaded:
            self.status  # noqa: B018 (resolves, and raises on a miss, before anything heavy is imported)
            self._load()
            self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...

    # -- embedding -----------------------------------------------------------------------------------------
    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Embed one clip.

        Args:
            audio: (channels, samples) float32 in [-1, 1] full scale; channels are averaged (as fadtk does).
            rate: its sample rate; resampled to :attr:`sample_rate` with :attr:`resampler`.

        Returns:
            (frames, dim) float32, frames >= 1.
        """
        self.load()
        waveform = prepare_waveform(audio, rate, self.sample_rate, self.resampler)
        out = np.asarray(self._embed(waveform), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] < 1 or out.shape[1] != self.dim:
            raise RuntimeError(f"{self.name}: expected (frames >= 1, {self.dim}) embeddings, got {out.shape}")
        return out

    @abstractmethod
    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        """(samples,) mono float32 at :attr:`sample_rate` -> (frames, dim)."""

    # -- identity ------------------------------------------------------------------------------------------
    @abstractmethod
    def preprocessing(self) -> str:
        """Everything between the file and the network, and the options that change the output, in one line."""

    def resampling_step(self) -> str:
        """The resampling step of :meth:`preprocessing`: ``soxr 16000 Hz`` for the default (the text cached
        embeddings were keyed with), else the method with its parameters."""
        method = "soxr" if self.resampler == DEFAULT_RESAMPLER else describe_resampler(self.resampler)
        return f"{method} {self.sample_rate} Hz"

    def checkpoint_digest(self) -> str:
        """The weights' digest, or ``random-init:seed=S`` for random weights."""
        status = self.status
        if status.is_random:
            return f"random-init:seed={RANDOM_SEED}"
        if status.sha256 is None:
            raise WeightsNotFoundError(f"{self.name}: no digest for the weights at {status.source}")
        return status.sha256

    def identity(self) -> dict[str, str]:
        """What an embedding depends on: the cache key and every results file carry it.

        A non-default resampler is also a key of its own, so that it changes the key even for a backend whose
        :meth:`preprocessing` does not name it; the default adds nothing, so existing cache keys stay valid.
        """
        identity = {"embedder": self.name, "checkpoint": self.checkpoint_digest(),
                    "preprocessing": self.preprocessing(),
                    "code_version": f"{type(self).__module__}.{type(self).__qualname__}/{self.code_version}"}
        if self.resampler != DEFAULT_RESAMPLER:
            identity["resampler"] = describe_resampler(self.resampler)
        return identity

    @property
    def stats_key(self) -> str:
        """The model key in a statistics ``.npz`` (fadtk's ``<model>.mu`` / ``<model>.cov``).

        The registry name for the default options (what fadtk computes); embedders with non-default options
        override it, so they never read statistics made with other options.
        """
        return self.name

    def describe(self) -> dict[str, Any]:
        """Static facts for results files (no loading)."""
        return {"name": self.name, "sample_rate": self.sample_rate, "dim": self.dim, "device": self.device,
                "options": dict(self.options), "stats_key": self.stats_key}


def with_digest(resolved: Resolved, sha256: str | None) -> Resolved:
    """``resolved`` with its status digest replaced (when the digest must cover other files than the default)."""
    return Resolved(resolved.folder, dataclasses.replace(resolved.status, sha256=sha256))
