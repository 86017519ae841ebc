"""OpenAI Jukebox (Dhariwal et al. 2020) through the ``jukebox-infer`` package: the paper's Table II row
"OpenAI Jukebox | 5.0B | > 6 h | Lyrics + Genre".

Three ways to run, picked by :meth:`Jukebox.resolve_weights` from ``WeightsChoice.source``:

- **a folder of audio files** (Jukebox outputs made elsewhere): served per item by the file-name rule of
  :mod:`baselines.files`; status kind ``files``.
- **a folder of Jukebox checkpoints** as jukebox-infer names and loads them (``5b/vqvae.pth.tar``,
  ``5b/prior_level_0.pth.tar``, ``5b/prior_level_1.pth.tar``, ``5b_lyrics/prior_level_2.pth.tar``; each a
  ``torch.save``'d dict whose ``"model"`` is the module's state dict, keys optionally prefixed ``module.``,
  see ``jukebox_infer.make_models.restore_model``). The folder may be the one holding ``5b/`` and
  ``5b_lyrics/`` or jukebox-infer's own cache root (``~/.cache``, files under ``jukebox/models/``), which is
  also looked in when no source is given. Status kind ``pretrained``.
- **nothing**: ``pretrained`` raises :class:`WeightsNotFoundError`; ``auto`` and ``random`` build the real
  architecture with random weights (efficiency only).

Jukebox-infer never opens a checkpoint itself: its restore paths are always empty (so its download helpers never
run either; ``auto_download=False`` is passed as well) and the adapter reads each file weights-only through
:func:`samuel.safe_load.load_weights_only`, because jukebox-infer's own ``torch.load`` does not pass
``weights_only`` and ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` would make it unpickle arbitrary objects.

Timing unit: one top-level prior token (128 samples, 344.5 per second at 44.1 kHz). ``max_units`` stops the
top-level prior after that many tokens and skips the upsamplers; the timed units therefore cover the top-level
prior only, never the two upsamplers (which sample 4x and 16x as many tokens) nor the VQ-VAE decoder, and every
output's info says so (``timed_units_cover``), so that an extrapolated time is labelled as a lower bound.

Two things jukebox-infer needs on CPU, both confined to a call of this adapter:

- it asserts ``isinstance(x, torch.cuda.LongTensor)`` on token and label tensors (``prior/conditioners.py``,
  ``prior/autoregressive.py``, ``prior/prior.py``), which no CPU tensor satisfies; for the duration of a CPU
  call ``torch.cuda.LongTensor`` is swapped for a class that accepts any int64 tensor, restored afterwards.
- it prints progress (tqdm on stdout, once per token loop); that output is captured, and label warnings
  (an artist or genre word not in Jukebox's vocabulary) go to the output's info instead.

Imports: ``jukebox_infer.make_models`` / ``.sample`` / ``.hparams`` / ``.vqvae`` / ``.prior`` pull in numpy,
librosa, soundfile, tqdm and unidecode; no module of jukebox-infer imports torchaudio or torchvision (the
package ``__init__`` imports ``api``, which imports the same modules; this adapter imports the submodules it
needs directly).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    WeightsChoice,
    WeightsNotFoundError,
    WeightsStatus,
    count_parameters,
)
from baselines.files import FileIndex, read_audio_file
from baselines.weights import random_status
from samuel.hub import existing_path, weights_digest
from samuel.safe_load import UnsafeCheckpointError, load_weights_only

DEFAULT_MODEL = "5b_lyrics"
# jukebox-infer's restore URLs are REMOTE_PREFIX + "jukebox/models/<model>/<file>"; files are looked for by the
# part after this folder, under the source or under <source>/jukebox/models (its own cache layout).
_CACHE_SUBDIR = "jukebox/models"
_JUKEBOX_CACHE_ROOT = "~/.cache"  # where jukebox-infer's download helpers put the files
_RANDOM_SEED = 0
_SAMPLE_RATE = 44_100
# As jukebox_infer.api.Jukebox.load: the fraction of a window by which each level's window advances.
_HOP_FRACTION = (0.5, 0.5, 0.125)
_TIMED_UNITS_COVER = ("top-level prior tokens only; the two upsamplers and the VQ-VAE decoder are not timed, so "
                      "a time extrapolated from these units is a lower bound on a full Jukebox generation")
_LEVEL_NAMES = {0: "upsampler_bottom", 1: "upsampler_middle"}


def checkpoint_names(model: str = DEFAULT_MODEL) -> dict[str, str]:
    """``{hparam-set name: checkpoint path relative to jukebox/models}`` for ``model``, as jukebox-infer names
    them (e.g. ``"vqvae": "5b/vqvae.pth.tar"``), plus the public URL of each under key ``"url:" + name``."""
    from jukebox_infer.hparams import HPARAMS_REGISTRY, REMOTE_PREFIX
    from jukebox_infer.make_models import MODELS

    if model not in MODELS:
        raise AdapterError(f"jukebox: unknown model {model!r}; jukebox-infer defines {', '.join(MODELS)}")
    names: dict[str, str] = {}
    for set_name in MODELS[model]:
        entry = HPARAMS_REGISTRY[set_name]
        url = entry.get("restore_vqvae") or entry.get("restore_prior")
        names[set_name] = url[len(REMOTE_PREFIX) + len(_CACHE_SUBDIR) + 1:]
        names["url:" + set_name] = url
    return names


class _AnyLongTensor(type):
    def __instancecheck__(cls, obj: object) -> bool:
        import torch

        return isinstance(obj, torch.Tensor) and obj.dtype == torch.long


class _LongTensorCheck(metaclass=_AnyLongTensor):
    """Stands in for ``torch.cuda.LongTensor`` in jukebox-infer's type asserts during a CPU call."""


@contextlib.contextmanager
def _cpu_long_tensor_checks(device: str) -> Iterator[None]:
    import torch

    if device.startswith("cuda"):
        yield
        return
    original = torch.cuda.LongTensor
    torch.cuda.LongTensor = _LongTensorCheck  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        torch.cuda.LongTensor = original  # type: ignore[misc]


@contextlib.contextmanager
def _captured_stdout() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


class Jukebox(Generator):
    """OpenAI Jukebox: VQ-VAE + top-level prior + two upsamplers, conditioned on artist, genre and lyrics.

    Options (all optional):
        model: a jukebox-infer model name, ``"5b_lyrics"`` (default), ``"5b"`` or ``"1b_lyrics"``.
        genre: default ``"pop"``; artist: default ``"unknown"``; lyrics: default ``""``.
        genre_from_prompt: default True: the words of ``request.prompt`` that are in Jukebox's genre vocabulary
            (at most the prior's bag-of-genre size, in order) replace ``genre``; a prompt with none keeps it.
            The info names the genre used.
        temperature: default 0.99 (jukebox-infer's default).
        hparams: ``{hparam-set name: {key: value}}`` overrides applied through jukebox-infer's
            ``setup_hparams`` on top of its registry entries (e.g. ``{"vqvae": {"width": 8}}``): for checkpoints
            of a non-published size, and for the tiny models of the tests. The checkpoint file names stay the
            published ones.
    """

    name = "jukebox"
    display_name = "OpenAI Jukebox"
    sample_rate = _SAMPLE_RATE
    conditioning = "Lyrics + Genre"
    uses_text = True  # the prompt may choose the genre words
    timing_unit = "frames"
    default_timing_mode = "extrapolate"
    timing_note = "top-level prior only: upsamplers and VQ-VAE decoder not timed"

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", **options: Any) -> None:
        super().__init__(weights, device=device, **options)
        self.model_name: str = options.get("model", DEFAULT_MODEL)
        self.genre: str = options.get("genre", "pop")
        self.artist: str = options.get("artist", "unknown")
        self.lyrics: str = options.get("lyrics", "")
        self.genre_from_prompt: bool = bool(options.get("genre_from_prompt", True))
        self.temperature: float = float(options.get("temperature", 0.99))
        self.hparam_overrides: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (options.get("hparams") or {}).items()}
        self._folder: Path | None = None  # checkpoints folder (pretrained) or audio folder (files)
        self._checkpoints: dict[str, Path] = {}
        self._index: FileIndex | None = None
        self._vqvae: Any = None
        self._priors: list[Any] = []

    # -- weights -------------------------------------------------------------------------------------------
    def _find_checkpoints(self, root: Path) -> dict[str, Path] | None:
        """Every checkpoint file of the model under ``root`` (either layout), or None if any is missing."""
        names = {k: v for k, v in checkpoint_names(self.model_name).items() if not k.startswith("url:")}
        for base in (root, root / _CACHE_SUBDIR):
            found = {k: base / rel for k, rel in names.items()}
            if all(p.is_file() for p in found.values()):
                return found
        return None

    def resolve_weights(self) -> WeightsStatus:
        mode, source = self.weights.mode, self.weights.source
        if mode == "random":
            return random_status(self.name, _RANDOM_SEED, "asked for with --weights random")
        names = checkpoint_names(self.model_name)
        files = [v for k, v in names.items() if not k.startswith("url:")]
        looked: list[str] = []
        roots: list[Path] = []
        if source is not None:
            local = existing_path(source)
            if local is None:
                looked.append(f"a local path {source!r} (none)")
            elif not local.is_dir():
                looked.append(f"{local} (a file; give the folder holding the checkpoints or the audio files)")
            else:
                roots.append(local)
        else:
            roots.append(Path(os.path.expanduser(_JUKEBOX_CACHE_ROOT)))
        for root in roots:
            found = self._find_checkpoints(root)
            if found is not None:
                self._folder, self._checkpoints = root, found
                return WeightsStatus("pretrained", str(root),
                                     f"{self.name}: pretrained {self.model_name} checkpoints from {root}",
                                     _digest(found))
            if source is not None and FileIndex(root).by_stem:
                self._folder = root
                return WeightsStatus("files", str(root),
                                     f"{self.name}: pre-generated files from {root} (quality as made elsewhere)")
            looked.append(f"{root} and {root / _CACHE_SUBDIR} (neither holds all of them, nor audio files)"
                          if source is not None else f"jukebox-infer's cache {root / _CACHE_SUBDIR}")
        urls = ", ".join(v for k, v in names.items() if k.startswith("url:"))
        message = (f"{self.name}: weights not found. Looked for the Jukebox {self.model_name} checkpoints "
                   f"{', '.join(files)} in {'; '.join(looked)}. They are public files ({urls}); download them on "
                   f"a machine with access (e.g. jukebox_infer.download_checkpoints({self.model_name!r}) puts them "
                   f"under ~/.cache/{_CACHE_SUBDIR}), copy the folder here and pass it as the weights source (the "
                   "folder holding 5b/ and 5b_lyrics/, or ~/.cache). A folder of Jukebox outputs (audio files "
                   "named by item id) works too. The network is never used.")
        if mode == "pretrained":
            raise WeightsNotFoundError(message)
        return random_status(self.name, _RANDOM_SEED, f"no pretrained weights found ({'; '.join(looked)})")

    # -- architecture ----------------------------------------------------------------------------------------
    def _hparams(self, set_name: str, **extra: Any) -> Any:
        from jukebox_infer.hparams import setup_hparams

        return setup_hparams(set_name, {**self.hparam_overrides.get(set_name, {}), **extra})

    def _build(self, device: str, checkpoints: Mapping[str, Path] | None) -> tuple[Any, list[Any], str]:
        """(vqvae, [prior level 0, 1, 2], captured stdout) through jukebox-infer's own builders.

        Restore paths are always empty, so jukebox-infer never opens a file: its ``load_checkpoint`` calls
        ``torch.load`` without ``weights_only``, which ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (or a torch before
        2.6) turns into unpickling that can run code. The checkpoints are read here instead, weights-only
        (:func:`_restore`).
        """
        import jukebox_infer.make_models as mm

        vqvae_name, *prior_names = mm.MODELS[self.model_name]
        fp16 = device.startswith("cuda")  # as jukebox-infer on GPU; fp32 everywhere on CPU
        top = self._hparams(prior_names[-1])
        top_hop = int(np.prod([s**d for s, d in zip(self._hparams(vqvae_name).strides_t,
                                                     self._hparams(vqvae_name).downs_t, strict=True)]))

        with _captured_stdout() as out:
            vqvae = mm.make_vqvae(self._hparams(vqvae_name, sample_length=top.n_ctx * top_hop, restore_vqvae=""),
                                  device, auto_download=False)
            if checkpoints is not None:
                _restore(vqvae, checkpoints[vqvae_name])
            priors = []
            for name in prior_names:
                hps = self._hparams(name, restore_prior="")
                hps.fp16_params = bool(hps.fp16_params and fp16)
                prior = mm.make_prior(hps, vqvae, device, auto_download=False)
                if checkpoints is not None:
                    _restore(prior, checkpoints[name])
                priors.append(prior)
        return vqvae, priors, out.getvalue()

    def architecture_on_meta(self) -> tuple[Any, list[Any]]:
        """(VQ-VAE, [prior level 0, 1, 2]) built by jukebox-infer's ``make_vqvae``/``make_prior`` inside
        ``torch.device("meta")``: every factory call (including the attention masks' ``tril(ones(n_ctx, n_ctx))``
        buffers and ``nn.init`` calls) lands on the meta device, so nothing is allocated; restore paths are empty,
        so no checkpoint is read and nothing is downloaded."""
        import torch

        with torch.device("meta"):
            vqvae, priors, _ = self._build("meta", None)
        return vqvae, priors

    def _count_parameters(self) -> ParamCount:
        """Exact counts of the real architecture built on the meta device (nothing allocated, no file read
        besides jukebox-infer's artist/genre id lists).

        Components: ``codec`` (VQ-VAE; its three 2048 x 64 codebooks are EMA buffers, not parameters, and are not
        counted), ``prior_top`` (the top-level transformer: token and position embeddings, 72/79 layers, output
        head), ``conditioners`` (the top level's lyrics encoder and artist/genre/timing embeddings),
        ``upsampler_middle`` and ``upsampler_bottom`` (each a whole upsampler: transformer, conditioner on the
        codes above, label embeddings). For 5b_lyrics that is 7,604,588,915 in all, of which the top-level
        transformer is 5,522,401,200: the paper's "5.0B" is the name OpenAI gave the top-level prior (its
        transformer is 5.5B); the full sampling system adds the lyrics encoder (96M), label embeddings (22M),
        two 1B upsamplers (981M each) and the 1.5M VQ-VAE.
        """
        vqvae, priors = self.architecture_on_meta()
        top = priors[-1]
        components: dict[str, Any] = {
            "codec": vqvae,
            "prior_top": top.prior,
            "conditioners": [m for n, m in top.named_children() if n != "prior"],
        }
        for level in reversed(range(len(priors) - 1)):
            components[_LEVEL_NAMES.get(level, f"upsampler_level_{level}")] = priors[level]
        return count_parameters(components)

    def total_units(self, request: GenerationRequest) -> int | None:
        """Top-level prior tokens for ``request.duration_s`` (its hop: 128 samples for the published models)."""
        if self.status.kind == "files":
            return None
        return max(1, math.ceil(request.duration_s * _SAMPLE_RATE / self._top_hop()))

    def _top_hop(self) -> int:
        import jukebox_infer.make_models as mm

        vq = self._hparams(mm.MODELS[self.model_name][0])
        return int(np.prod([s**d for s, d in zip(vq.strides_t, vq.downs_t, strict=True)]))

    def memory_estimate_bytes(self) -> int:
        """The base estimate (parameters in fp32, +25%) plus the top-level prior's key/value cache for one sample
        at full context (depth x 2 x n_ctx x attention width x 4 bytes: 6.2 GB for 5b_lyrics)."""
        import jukebox_infer.make_models as mm

        top = self._hparams(mm.MODELS[self.model_name][-1])
        kv_cache = top.prior_depth * 2 * top.n_ctx * int(top.m_attn * top.prior_width) * 4
        return super().memory_estimate_bytes() + kv_cache

    def bytes_per_param(self) -> int:
        # fp32 on CPU. On CUDA jukebox-infer keeps the top prior's linear weights in fp16 and the rest in fp32,
        # so 4 is an upper bound there.
        return 4

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        status = self.status
        if status.kind == "files":
            assert self._folder is not None
            self._index = FileIndex(self._folder)
            return
        import torch

        if status.kind == "pretrained":
            try:
                self._vqvae, self._priors, _ = self._build(self.device, self._checkpoints)
            except UnsafeCheckpointError as err:
                raise AdapterError(f"{self.name}: {err}. Jukebox checkpoints hold tensors and plain data only; "
                                   "this file is not one of them") from err
            except (RuntimeError, KeyError, OSError, EOFError) as err:
                raise AdapterError(f"{self.name}: cannot load the checkpoints in {self._folder} into the "
                                   f"{self.model_name} architecture: {err}") from err
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_RANDOM_SEED)
            self._vqvae, self._priors, _ = self._build(self.device, None)
            # jukebox-infer initialises the codebooks to zeros (training fills them from data); random codes
            # make the decoded audio depend on the sampled tokens.
            for block in self._vqvae.bottleneck.level_blocks:
                block.k.normal_()

    def _unload(self) -> None:
        self._vqvae, self._priors, self._index = None, [], None

    # -- generation ------------------------------------------------------------------------------------------
    def _genre_for(self, prompt: str) -> str:
        if not (self.genre_from_prompt and prompt.strip()):
            return self.genre
        from jukebox_infer.data.artist_genre_processor import norm

        top = self._priors[-1]
        vocab = top.labeller.ag_processor.genre_ids
        words = norm(prompt).split("_") if not top.labels_v3 else [prompt.strip().lower()]
        known = [w for w in dict.fromkeys(words) if w in vocab][: top.y_emb.max_bow_genre_size]
        return " ".join(known) if known else self.genre

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        max_units: int | None = None,
        on_unit: Callable[[], None] | None = None,
    ) -> list[GeneratedAudio]:
        self.load()
        if self.status.kind == "files":
            assert self._index is not None
            return [read_audio_file(self._index.match(r), r) for r in requests]
        return [self._generate_one(r, max_units, on_unit) for r in requests]

    def unmatched_files(self, requests: Sequence[GenerationRequest]) -> list[Path]:
        if self.status.kind != "files" or self._folder is None or not self._folder.is_dir():
            return []
        return (self._index or FileIndex(self._folder)).extra(requests)

    def _generate_one(self, request: GenerationRequest, max_units: int | None,
                      on_unit: Callable[[], None] | None) -> GeneratedAudio:
        import torch
        from jukebox_infer.hparams import Hyperparams
        from jukebox_infer.sample import sample_level, upsample

        top = self._priors[-1]
        top_level = len(self._priors) - 1
        min_len = int(top.y_emb.total_length_emb.pos_min) if top.y_emb.include_time_signal else 0
        max_len = int(top.y_emb.total_length_emb.pos_max) if top.y_emb.include_time_signal else None
        n_samples_req = round(request.duration_s * _SAMPLE_RATE)
        if request.duration_s <= 0 or (max_len is not None and n_samples_req >= max_len):
            raise ItemError(f"item {request.item_id!r}: Jukebox samples songs of up to {max_len} samples; "
                            f"{request.duration_s} s asked")
        n_top = self.total_units(request)
        assert n_top is not None
        partial = max_units is not None and max_units < n_top
        units = min(max_units, n_top) if max_units is not None else n_top
        genre = self._genre_for(request.prompt)
        # The top prior embeds the song's total length, trained on songs of min_duration (23.8 s for 5b_lyrics) to
        # 600 s; a shorter request is sampled as the opening of a song of the minimum length.
        total_length = max(n_top * int(top.raw_to_tokens), min_len)
        metas = [dict(artist=self.artist, genre=genre, lyrics=self.lyrics, total_length=total_length, offset=0)]
        hps = Hyperparams(n_samples=1, sample_length=n_top * int(top.raw_to_tokens), hop_fraction=_HOP_FRACTION)
        if not partial:
            self._check_upsampler_context(request, hps.sample_length)
        fp16 = self.device.startswith("cuda")
        kwargs = [dict(temp=self.temperature, fp16=fp16, chunk_size=16 if level == top_level else 64,
                       max_batch_size=1) for level in range(len(self._priors))]
        device = torch.device(self.device)
        done = [0]

        def unit_hook(*_: Any) -> None:
            done[0] += 1
            if on_unit is not None:
                on_unit()

        # x_out (the output head) runs exactly once per sampled top-level token (primed context is replayed
        # through the transformer only), so a forward hook on it is the per-token callback.
        handle = top.prior.x_out.register_forward_hook(unit_hook)
        devices = [torch.cuda.current_device()] if fp16 else []
        try:
            with (torch.random.fork_rng(devices=devices), _cpu_long_tensor_checks(self.device),
                  _captured_stdout() as out, torch.no_grad()):
                torch.manual_seed(request.seed)
                labels = [p.labeller.get_batch_labels(metas, device) for p in self._priors]
                zs = [torch.zeros(1, 0, dtype=torch.long, device=device) for _ in self._priors]
                zs = sample_level(zs, labels[top_level], kwargs[top_level], top_level, top, units,
                                  int(_HOP_FRACTION[top_level] * top.n_ctx), hps)
                if partial:
                    # Only the top level was sampled: decode it with the VQ-VAE's top-level decoder.
                    audio = top.decode([zs[top_level]], start_level=top_level, end_level=top_level + 1)
                else:
                    zs = upsample(zs, labels, kwargs, self._priors, hps, device=device)
                    audio = top.decode(zs, start_level=0, bs_chunks=1)
        except (AssertionError, RuntimeError, ValueError) as err:
            raise ItemError(f"item {request.item_id!r}: Jukebox sampling failed: {err}") from err
        finally:
            handle.remove()
        mono = audio[0, :, 0].float().cpu().numpy()
        if not partial:
            mono = mono[:n_samples_req]
        notes = [line for line in out.getvalue().splitlines() if "not present" in line]
        info: dict[str, Any] = {
            "units_done": done[0], "units_total": n_top, "partial": partial,
            "timed_units_cover": _TIMED_UNITS_COVER,
            "upsampler_tokens": {_LEVEL_NAMES.get(lv, f"level_{lv}"): hps.sample_length // int(p.raw_to_tokens)
                                 for lv, p in enumerate(self._priors[:-1])},
            "genre": genre, "artist": self.artist, "lyrics_chars": len(self.lyrics), "seed": request.seed,
            "channels": "mono model output, duplicated to 2 channels",
            "weights": self.status.kind,
        }
        if partial:
            info["partial_note"] = (f"{units} of {n_top} top-level tokens, decoded by the VQ-VAE's top-level "
                                    "decoder; the upsamplers did not run")
        if notes:
            info["label_notes"] = notes
        return GeneratedAudio(np.stack([mono, mono]).astype(np.float32), _SAMPLE_RATE, info)

    def _check_upsampler_context(self, request: GenerationRequest, sample_length: int) -> None:
        """Each upsampler conditions a full window on n_ctx / cond_downsample codes of the level above; jukebox-infer
        cannot upsample a song shorter than that (5.9 s for the published models)."""
        for level, prior in enumerate(self._priors[:-1]):
            above = sample_length // int(self._priors[level + 1].raw_to_tokens)
            needed = prior.n_ctx // prior.cond_downsample
            if above < needed:
                seconds = needed * int(self._priors[level + 1].raw_to_tokens) / _SAMPLE_RATE
                raise ItemError(f"item {request.item_id!r}: {request.duration_s} s is too short for Jukebox's "
                                f"upsamplers (at least {seconds:.2f} s); time it with max_units instead")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model_name,
                "timed_units_cover": _TIMED_UNITS_COVER}


def _restore(module: Any, path: Path) -> None:
    """jukebox-infer's ``restore_model`` with a weights-only read: the file's ``"model"`` state dict (keys
    optionally prefixed ``module.`` by DDP) loaded strictly, and its ``"step"`` kept as the module's."""
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model"), Mapping):
        raise KeyError(f"{path}: expected a dict with a 'model' state dict, as jukebox-infer writes")
    state = {k.removeprefix("module."): v for k, v in checkpoint["model"].items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise RuntimeError(f"{path}: {err}") from err
    module.step = checkpoint.get("step", 0)


def _digest(files: Mapping[str, Path]) -> str:
    """One identity for the set of checkpoint files: sha256 over each file's :func:`weights_digest`."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{weights_digest(files[name])}\n".encode())
    return "head-sha256:" + h.hexdigest()

