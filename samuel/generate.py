"""`samuel generate`: vocal recordings in, instrumental accompaniments out (44.1 kHz stereo, the input's length).

The pipeline, per input file:

1. load and convert to 44.1 kHz stereo (:mod:`samuel.audio`);
2. cut into chunks of the model's training length (``config.num_frames``: 1024 frames = 47.55 s for the paper
   model), padding short input with silence (:mod:`samuel.chunking` states the policy);
3. encode the vocal chunks with the Stable Audio Open VAE (:mod:`samuel.codec`);
4. normalise with the training split's statistics stored in the checkpoint;
5. sample the accompaniment latents with classifier-free guidance; chunks from several files share a batch;
6. undo the normalisation and decode with the VAE;
7. join the chunks with equal-power crossfades, cut to the input's length, and write the WAV (and the mix).

Every chunk's noise comes from its own generator, seeded from (seed, the input's path below the input folder,
chunk index; :class:`samuel.generate_plan.Job`): the output of a file does not depend on which other files share its
batch, and two files of one name in different folders get different noise. Each output gets a JSON sidecar with its
provenance (checkpoint and its training record, codec, sampler settings, seeds, device, versions, timings). A checkpoint
without a training record (for example random weights saved for a test) is labelled untrained there and on
stderr, so its output can never pass for a quality result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from samuel import __version__
from samuel.atomic import DiskFull, atomic_write
from samuel.audio import LoadedAudio, load_tracks_sum, write_audio
from samuel.checkpoint import NORM_KEY, TRAINING_KEY, load_model, read_json_metadata, resolve_weights_file
from samuel.chunking import (
    CHUNK_FRAMES,
    DEFAULT_OVERLAP_FRAMES,
    HOP_LENGTH,
    ChunkPlan,
    join_chunks,
    plan_chunks,
    split_chunks,
    valid_frames,
)
from samuel.codec import OobleckCodec
from samuel.data import NormStats
from samuel.generate_plan import (
    PENDING_KEY,
    Job,
    JobTuple,
    _seed_key,
    conflicts_message,
    path_conflicts,
    sidecar_path,
    vocal_tracks,
)
from samuel.guidance import DEFAULT_GUIDANCE, guided_model_fn
from samuel.hashing import file_sha256, files_sha256
from samuel.model import SAMUeL, low_precision_twin
from samuel.provenance import cpu_flags
from samuel.samplers import DEFAULT_STEPS, SAMPLERS, ModelFn, sample
from samuel.time_major import TimeMajorSAMUeL

UNTRAINED_LABEL = "UNTRAINED WEIGHTS: the checkpoint has no training record; output is not a quality result"
RANDOM_CODEC_LABEL = "RANDOM CODEC: the VAE has random weights; output is not a quality result"


def training_codec_mismatch(training: Any, codec: dict[str, Any]) -> str | None:
    """Why ``codec`` (an :meth:`OobleckCodec.provenance`) is not the VAE whose latents the checkpoint was trained on
    (its training record's ``data.codec``, from `samuel prepare`'s manifest); None when the weights files match, or
    when the record does not say (POPDB latents, checkpoints from before it was recorded).

    SAMUeL only knows the latent space it was trained in: another VAE's latents give meaningless audio. Files are
    compared by sha256, so the same weights in another format (a stable-audio-tools checkpoint against the diffusers
    folder) also differ; the message says so rather than refusing."""
    data = training.get("data") if isinstance(training, dict) else None
    trained_on = data.get("codec") if isinstance(data, dict) else None
    if not isinstance(trained_on, dict) or not trained_on.get("weights_sha256"):
        return None
    ours = codec.get("weights_sha256")
    if ours == trained_on["weights_sha256"]:
        return None
    return (f"VAE MISMATCH: the checkpoint was trained on latents of {trained_on.get('source')} (weights sha256 "
            f"{str(trained_on['weights_sha256'])[:12]}...), but this run's VAE is {codec.get('source')} (sha256 "
            f"{str(ours)[:12] + '...' if ours else 'unknown: no weights file'}); unless both hold the same weights "
            "in another file format, the output is meaningless")


@dataclass(frozen=True)
class GenerateSettings:
    """How to sample. The paper samples with 800 DDPM steps; DPM-Solver++ at 25 steps is our default because it
    matches an exact reference solution to 0.2% in tests/test_samplers.py at 1/32 of the model evaluations."""

    sampler: str = "dpmpp"
    steps: int | None = None  # None: the sampler's default (dpmpp 25, ddim 50, ddpm 800)
    guidance: float = DEFAULT_GUIDANCE
    seed: int = 0
    spacing: str = "quadratic"
    batch_size: int = 4  # chunks per sampler batch, across files
    overlap_frames: int | None = None  # None: 1/8 of the chunk (128 frames = 5.94 s for 1024-frame chunks)
    downmix: bool = False

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose from {sorted(SAMPLERS)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        # checked here, not by the sampler: that would fail only after the first batch had been encoded
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not math.isfinite(self.guidance):  # NaN or inf: every chunk would be sampled, then refused as NaN
            raise ValueError(f"guidance must be a finite number, got {self.guidance}")
        if self.spacing not in ("quadratic", "linear"):
            raise ValueError(f"spacing must be 'quadratic' or 'linear', got {self.spacing!r}")
        if self.overlap_frames is not None and self.overlap_frames < 0:
            raise ValueError(f"overlap_frames must be >= 0, got {self.overlap_frames}")

    @property
    def n_steps(self) -> int:
        return DEFAULT_STEPS[self.sampler] if self.steps is None else self.steps


def chunk_seed(seed: int, key: str, chunk: int) -> int:
    """A 63-bit seed for one chunk: the same (seed, key, chunk) always gives the same noise (``key``: a job's
    :attr:`samuel.generate_plan.Job.key`, the input's path below the input folder)."""
    digest = hashlib.sha256(f"{seed}\0{key}\0{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class ItemResult:
    """What happened to one input file."""

    input: str
    status: str  # "ok", "skipped" (output already there, checked) or "error"
    output: str | None = None
    message: str | None = None  # why it failed or was skipped; for "ok", why an existing output was redone
    seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Job:
    src: Path
    out: Path
    mix: Path | None
    key: str
    audio: LoadedAudio
    plan: ChunkPlan
    vocal: Tensor  # (n_chunks, 64, 1024) raw VAE latents
    accomp: list[Tensor | None]
    timings: dict[str, float]
    made_with: dict[str, Any] = field(default_factory=dict)  # see Accompanist.made_with
    redone: str | None = None  # why an existing output is being redone


class Accompanist:
    """A SAMUeL checkpoint plus the VAE: turns vocal audio into accompaniment audio."""

    def __init__(self, model: SAMUeL, codec: OobleckCodec, norm: NormStats | None, *, checkpoint_info: dict[str, Any],
                 device: torch.device | str = "cpu", precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
        self.model = model.to(device).eval()
        self.codec, self.norm = codec, norm
        self.checkpoint_info = checkpoint_info
        self.device, self.precision = torch.device(device), precision
        self._twins: dict[torch.dtype, SAMUeL | TimeMajorSAMUeL] = {}
        self._sampled_batches: set[int] = set()  # batch sizes the compiled step has run (see _compiled_batch)
        self._codec_mismatch: tuple[str | None] | None = None

    @classmethod
    def load(cls, checkpoint: str | os.PathLike[str], codec: str | os.PathLike[str], *,
             device: torch.device | str = "cpu", precision: str = "fp32", compile: bool = False) -> Accompanist:
        """Load SAMUeL weights (EMA weights when the file came from `samuel train`; its run folder names them too)
        and the codec."""
        path = resolve_weights_file(checkpoint)
        model = load_model(path, device)
        norm_dict = read_json_metadata(path, NORM_KEY)
        training = read_json_metadata(path, TRAINING_KEY)
        info = {"path": str(path), "sha256": file_sha256(path), "training": training,
                "trained": bool(training and training.get("steps", 0) > 0),
                "normalisation": "training-split statistics" if norm_dict else "none (identity)"}
        if compile:
            model.denoise = torch.compile(model.denoise)  # type: ignore[method-assign]
        norm = NormStats.from_dict(norm_dict) if norm_dict else None
        dtype = codec_dtype(precision, device)
        # bf16 is the fast path: there the compiled Snake pays its one compile (about 12 s, cached on disk)
        vae = OobleckCodec.load(codec, device=device, dtype=dtype, compiled_snake=dtype == torch.bfloat16)
        return cls(model, vae, norm, checkpoint_info=info, device=device, precision=precision)

    @property
    def trained(self) -> bool:
        return bool(self.checkpoint_info.get("trained"))

    def label(self) -> str | None:
        """Why this accompanist's output is not a quality result (stderr and every sidecar say it), or None."""
        if not self.trained:
            return UNTRAINED_LABEL
        if self.codec.provenance().get("random_weights") is True:  # e.g. the tiny random VAE of the tests
            return RANDOM_CODEC_LABEL
        return self.codec_mismatch()

    def codec_mismatch(self) -> str | None:
        """:func:`training_codec_mismatch` for this checkpoint and codec (hashes the codec's weights once)."""
        if self._codec_mismatch is None:
            self._codec_mismatch = (training_codec_mismatch(self.checkpoint_info.get("training"),
                                                            self.codec.provenance()),)
        return self._codec_mismatch[0]

    # -- latent-space sampling -------------------------------------------------------------------------------
    def sample_latents(self, vocal: Tensor, seeds: Sequence[int], settings: GenerateSettings, *,
                       wrap_model_fn: Callable[[ModelFn], ModelFn] | None = None) -> Tensor:
        """Raw vocal latents (B, 64, T) -> raw accompaniment latents (B, 64, T); item i uses ``seeds[i]``.

        ``wrap_model_fn`` wraps the guided model function that the sampler calls once per step (the benchmark
        harness timestamps steps with it, or stops after k steps by raising from it).
        """
        if len(seeds) != vocal.shape[0]:
            raise ValueError(f"need one seed per item: {len(seeds)} seeds for a batch of {vocal.shape[0]}")
        v = vocal.float()
        if self.norm is not None:
            v = self.norm.normalise_vocal(v)
        v = v.to(self.device)
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        rows = v.shape[0]
        padded = self._compiled_batch(rows)
        if padded > rows:  # silent rows with a fixed seed, dropped below; each row is sampled on its own
            v = torch.cat([v, v.new_zeros(padded - rows, *v.shape[1:])])
            generators += [torch.Generator().manual_seed(0) for _ in range(padded - rows)]
        with torch.inference_mode():
            fn = self.model_fn(v, settings.guidance)
            if wrap_model_fn is not None:
                fn = wrap_model_fn(fn)
            x0 = sample(fn, v.shape, self.model.alpha_bar, sampler=settings.sampler, steps=settings.n_steps,
                        spacing=settings.spacing, generator=generators, device=self.device)
        x0 = x0[:rows].float().cpu()
        return self.norm.denormalise_accomp(x0) if self.norm is not None else x0

    def _compiled_batch(self, rows: int) -> int:
        """The batch to sample ``rows`` chunks in: ``rows`` itself, except under ``load(compile=True)`` when a larger
        batch has been compiled already and this one has not: then the smallest such batch, the extra rows silent.
        A folder's last, partial batch would otherwise compile the step again (40-60 s for the real-size U-Net on
        2 cores, docs/benchmarks.md); sampling up to batch_size - 1 silent chunks costs about a second each."""
        if not self.compiled:
            return rows
        larger = [b for b in self._sampled_batches if b > rows]
        batch = min(larger) if larger and rows not in self._sampled_batches else rows
        self._sampled_batches.add(batch)
        return batch

    def model_fn(self, vocal: Tensor, guidance: float, *, precision: str | None = None) -> ModelFn:
        """The guided model function the sampler calls once per step, on prepared (normalised, on-device) vocal
        latents: the vocal condition in fp32; for bf16 the denoiser is the model's bf16 twin (:meth:`twin`), for fp16
        it runs under autocast (``precision``: this accompanist's unless given). Call it under inference mode."""
        precision = self.precision if precision is None else precision
        if precision == "bf16":
            return guided_model_fn(self.model, vocal, guidance, denoiser=self.twin(torch.bfloat16))
        fn = guided_model_fn(self.model, vocal, guidance)
        return fn if precision == "fp32" else _autocast(fn, self.device, precision)

    def twin(self, dtype: torch.dtype) -> SAMUeL | TimeMajorSAMUeL:
        """The model with its parameters in ``dtype`` (built once, kept): bf16 runs this rather than autocast,
        which would cast every weight again at every step. fp16 stays under autocast (GroupNorm statistics and
        the v output can overflow fp16's range).

        Under ``load(compile=True)`` the twin runs time-major (samuel.time_major), compiled: inductor's graph of the
        channel-major bf16 twin returned NaN (its fused RoPE feeding the CPU's flash attention; torch 2.13,
        docs/benchmarks.md, "Speed, fifth pass"), and time-major is the faster graph besides."""
        if dtype not in self._twins:
            twin: SAMUeL | TimeMajorSAMUeL = low_precision_twin(self.model, dtype)
            if self.compiled:
                twin = TimeMajorSAMUeL(twin)
                twin.denoise_time_major = torch.compile(twin.denoise_time_major)  # type: ignore[method-assign]
            self._twins[dtype] = twin
        return self._twins[dtype]

    @property
    def compiled(self) -> bool:
        """Whether load(compile=True) compiled the U-Net (the fp32 model's denoise; a twin's follows, see twin)."""
        return "denoise" in vars(self.model)

    def unet_form(self) -> dict[str, Any]:
        """How the U-Net runs, for the sidecar: compiled or eager, and its layout (see :meth:`twin`)."""
        time_major = self.compiled and self.precision == "bf16"
        return {"compiled": self.compiled,
                "layout": "time-major (samuel.time_major)" if time_major else "channel-major"}

    # -- audio in memory ---------------------------------------------------------------------------------------
    def chunk_plan(self, n_samples: int, settings: GenerateSettings) -> ChunkPlan:
        """How audio of ``n_samples`` (44.1 kHz) is cut into the model's chunks (see samuel.chunking)."""
        frames = self.model.config.num_frames  # the context the model was trained on
        return plan_chunks(n_samples, frames * HOP_LENGTH, self.overlap_frames(settings) * HOP_LENGTH)

    def overlap_frames(self, settings: GenerateSettings) -> int:
        """The crossfade between chunks, in latent frames: ``settings.overlap_frames``, else 1/8 of the chunk."""
        frames = self.model.config.num_frames
        return frames * DEFAULT_OVERLAP_FRAMES // CHUNK_FRAMES if settings.overlap_frames is None \
            else settings.overlap_frames

    def accompany(self, samples: np.ndarray, settings: GenerateSettings, *, key: str,
                  wrap_model_fn: Callable[[ModelFn], ModelFn] | None = None) -> tuple[np.ndarray, dict[str, float]]:
        """(2, S) 44.1 kHz vocal -> (2, S) accompaniment, with stage timings; the same steps as :meth:`run` for
        one file, in memory. Chunk seeds come from (settings.seed, key, chunk index)."""
        with self._heap():
            return self._accompany(samples, settings, key=key, wrap_model_fn=wrap_model_fn)

    def _heap(self) -> contextlib.AbstractContextManager[Any]:
        """The codec's samuel.heap rule (:meth:`OobleckCodec.heap`) held for a whole item, so that the U-Net's steps
        between encode and decode keep the heap too; one trim at the end."""
        heap = getattr(self.codec, "heap", None)  # a test's stand-in codec may have none
        return heap() if heap is not None else contextlib.nullcontext()

    def _accompany(self, samples: np.ndarray, settings: GenerateSettings, *, key: str,
                   wrap_model_fn: Callable[[ModelFn], ModelFn] | None) -> tuple[np.ndarray, dict[str, float]]:
        timings: dict[str, float] = {}
        plan = self.chunk_plan(samples.shape[1], settings)
        t0 = time.perf_counter()
        vocal = self.codec.encode(torch.from_numpy(split_chunks(samples, plan))).cpu()
        timings["encode_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        parts = []
        for start in range(0, len(plan), settings.batch_size):
            idx = range(start, min(start + settings.batch_size, len(plan)))
            parts.append(self.sample_latents(vocal[idx.start:idx.stop], [chunk_seed(settings.seed, key, k)
                                                                         for k in idx], settings,
                                             wrap_model_fn=wrap_model_fn))
        timings["sample_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        audio = self.codec.decode(torch.cat(parts), keep_frames=valid_frames(plan)).cpu().numpy()
        timings["decode_s"] = time.perf_counter() - t0
        return join_chunks(audio, plan), timings

    # -- files -----------------------------------------------------------------------------------------------
    def run(self, jobs: Sequence[JobTuple], settings: GenerateSettings, *,
            overwrite: bool = False, progress: bool = True,
            on_result: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
        """Generate for each job (:class:`samuel.generate_plan.Job`, or a plain (input, output, mix-or-None)); one bad
        input is reported and the rest go on."""
        with self._heap():
            return self._run(jobs, settings, overwrite=overwrite, progress=progress, on_result=on_result)

    def _run(self, jobs: Sequence[JobTuple], settings: GenerateSettings, *,
             overwrite: bool, progress: bool, on_result: Callable[[ItemResult], None] | None) -> list[ItemResult]:
        from tqdm import tqdm

        n_train = len(self.model.alpha_bar)
        if settings.n_steps > n_train:  # before any file is read, not after the first batch has been encoded
            raise ValueError(f"steps must lie in [1, {n_train}] for this model, got {settings.n_steps}")
        conflicts = path_conflicts(jobs)
        if conflicts:  # before any file is read: a run that would destroy its own input or output is no run
            raise ValueError(conflicts_message(conflicts))
        results: list[ItemResult] = []
        queue: list[tuple[_Job, int]] = []
        bar = tqdm(total=0, unit="chunk", desc="generate", disable=not progress, file=sys.stderr)

        def report(result: ItemResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        def flush(limit: int) -> None:
            while len(queue) >= limit and queue:
                batch, queue[:] = queue[: settings.batch_size], queue[settings.batch_size :]
                self._sample_batch(batch, settings)
                bar.update(len(batch))
                for job in {id(j): j for j, _ in batch}.values():
                    if all(a is not None for a in job.accomp):
                        report(self._finish(job, settings))

        for src, out, mix, key in (Job(*j) for j in jobs):
            key = key or _seed_key(src, out)
            try:
                made_with = self.made_with(settings, files_sha256(vocal_tracks(src)), key)
                redone = None
                if not overwrite:
                    state, why = existing_output(out, mix, made_with)
                    if state == "done":
                        report(ItemResult(str(src), "skipped", str(out), f"{src}: {out} exists, made from this "
                                          "input with these settings and weights (use --overwrite to redo)"))
                        continue
                    if state in ("stale", "changed", "foreign"):
                        what = {"stale": f"{out} exists but was made {why}", "changed": f"{out} exists but {why}",
                                "foreign": why}[state]
                        report(ItemResult(str(src), "error", str(out), f"{src}: {what}; kept as it is: use "
                                          "--overwrite to replace it, or another --out"))
                        continue
                    redone = why or None  # torn or unfinished: not what its sidecar says was written
                job = self._start(src, out, mix, key, settings)
                job.made_with, job.redone = made_with, redone
            except DiskFull:
                raise  # not this file's fault: the command stops and says so (samuel.cli)
            except Exception as err:  # one bad file must not stop the others; the message names the file
                report(ItemResult(str(src), "error", message=_message(src, err)))
                continue
            queue.extend((job, k) for k in range(len(job.plan)))
            bar.total += len(job.plan)
            bar.refresh()
            flush(settings.batch_size)
        flush(1)
        bar.close()
        return results

    def _start(self, src: Path, out: Path, mix: Path | None, key: str, settings: GenerateSettings) -> _Job:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        audio = load_tracks_sum(vocal_tracks(src), downmix=settings.downmix)
        timings["load_s"] = time.perf_counter() - t0
        plan = self.chunk_plan(audio.samples.shape[1], settings)
        chunks = torch.from_numpy(split_chunks(audio.samples, plan))
        t0 = time.perf_counter()
        vocal = self.codec.encode(chunks).cpu()
        timings["encode_s"] = time.perf_counter() - t0
        timings["sample_s"] = 0.0
        return _Job(src, out, mix, key, audio, plan, vocal, [None] * len(plan), timings)

    def _sample_batch(self, batch: list[tuple[_Job, int]], settings: GenerateSettings) -> None:
        vocal = torch.stack([job.vocal[k] for job, k in batch])
        seeds = [chunk_seed(settings.seed, job.key, k) for job, k in batch]
        t0 = time.perf_counter()
        accomp = self.sample_latents(vocal, seeds, settings)
        per_item = (time.perf_counter() - t0) / len(batch)  # a shared batch's time is split evenly among its chunks
        for i, (job, k) in enumerate(batch):
            job.accomp[k] = accomp[i]
            job.timings["sample_s"] += per_item

    def _finish(self, job: _Job, settings: GenerateSettings) -> ItemResult:
        try:
            t0 = time.perf_counter()
            latents = torch.stack([a for a in job.accomp if a is not None])
            audio = self.codec.decode(latents, keep_frames=valid_frames(job.plan)).cpu().numpy()
            job.timings["decode_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            accompaniment = join_chunks(audio, job.plan)
            _write_sidecar(job.out, self.pending_record(job))  # a crash from here on leaves a record saying so
            write_audio(job.out, accompaniment)
            if job.mix is not None:
                write_audio(job.mix, job.audio.samples + accompaniment)
            job.timings["write_s"] = time.perf_counter() - t0
            record = self.provenance(job, settings)
            record["made_with"] = job.made_with
            record["files"] = {"output": _file_entry(job.out), "mix": _file_entry(job.mix) if job.mix else None}
            _write_sidecar(job.out, record)
        except DiskFull:
            raise
        except Exception as err:
            return ItemResult(str(job.src), "error", message=_message(job.src, err))
        finally:
            job.vocal = job.vocal[:0]  # free the latents; the job object may outlive this call in `batch`
        note = None if job.redone is None else f"redone: the existing {job.out} {job.redone}"
        return ItemResult(str(job.src), "ok", str(job.out), note, seconds=job.audio.seconds, timings=job.timings)

    def made_with(self, settings: GenerateSettings, input_sha256: str, seed_key: str) -> dict[str, Any]:
        """What an output depends on: its input's bytes, the settings that change it, the name its chunk seeds
        follow (``seed_key``, :func:`chunk_seed`), the checkpoint, the VAE's weights and the precision. Kept in the
        sidecar and compared before an existing output is skipped (:func:`existing_output`). Defaults are stored
        resolved (``steps``, ``overlap_frames``). Not ``batch_size`` (a file's output does not depend on its batch),
        ``downmix`` (it only admits files that fail without it), ``--compile`` or the device (how the same
        arithmetic ran: rounding, not another output)."""
        codec = self.codec.provenance()
        return {"input_sha256": input_sha256,
                "settings": {**{k: v for k, v in asdict(settings).items() if k not in ("batch_size", "downmix")},
                             "steps": settings.n_steps, "overlap_frames": self.overlap_frames(settings)},
                "seed_key": seed_key,
                "checkpoint_sha256": self.checkpoint_info.get("sha256"),
                "codec_weights": codec.get("weights_sha256") or codec.get("source"),
                "precision": self.precision}

    @staticmethod
    def pending_record(job: _Job) -> dict[str, Any]:
        """The sidecar written before the audio and replaced by the full record after it (and the mix): a run
        that stops between the two leaves this, so a rerun knows the audio there is its own and unfinished
        (:func:`existing_output`), and a file without any sidecar is known to be someone else's."""
        return {"input": str(job.src), "output": str(job.out), "mix": str(job.mix) if job.mix else None,
                PENDING_KEY: "samuel generate is writing this output; until this record is replaced by the full "
                             "one, the audio here (and the mix) is unfinished"}

    def provenance(self, job: _Job, settings: GenerateSettings) -> dict[str, Any]:
        codec = self.codec.provenance()
        return {
            "input": str(job.src), "output": str(job.out), "mix": str(job.mix) if job.mix else None,
            "weights": "trained" if self.trained else "untrained",
            "codec_weights": "random" if codec.get("random_weights") is True else "pretrained or unknown",
            "label": self.label(),
            "codec_mismatch": self.codec_mismatch(),
            "input_audio": {"rate": job.audio.source_rate, "channels": job.audio.source_channels,
                            "frames": job.audio.source_frames, "seconds": job.audio.seconds},
            "chunks": {"n": len(job.plan), "chunk_samples": job.plan.chunk, "overlap_samples": job.plan.overlap,
                       "starts": list(job.plan.starts), "padding": "silence", "join": "equal-power crossfade"},
            "settings": {**asdict(settings), "steps": settings.n_steps},
            "seeds": [chunk_seed(settings.seed, job.key, k) for k in range(len(job.plan))],
            "checkpoint": self.checkpoint_info, "codec": codec,
            "device": str(self.device), "precision": self.precision, "u_net": self.unet_form(),
            "threads": torch.get_num_threads(),
            "versions": {"samuel": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "timings": {k: round(v, 4) for k, v in job.timings.items()},
        }


def _write_sidecar(output: Path, record: dict[str, Any]) -> None:
    atomic_write(sidecar_path(output), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))


def _names_mix(record: dict[str, Any], mix: Path) -> bool:
    """Whether a sidecar records ``mix`` as its mix: by name, as relative paths differ between working folders."""
    recorded = record.get("mix")
    return isinstance(recorded, str) and Path(recorded).name == mix.name


def _file_entry(path: Path) -> dict[str, Any]:
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path),
            "frames": _audio_frames(path)}


def _audio_frames(path: Path) -> int | None:
    """The frames soundfile reads in ``path`` (None: not readable as audio)."""

    try:
        return int(sf.info(str(path)).frames)
    except (RuntimeError, OSError, ValueError):
        return None


def _describe_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """How the sidecar's ``made_with`` differs from this run's, in words ("seed 0 (this run: 5)")."""
    changes = []
    if before.get("input_sha256") != now["input_sha256"]:
        changes.append(f"from another input file (sha256 {str(before.get('input_sha256'))[:12]}, this one's "
                       f"{now['input_sha256'][:12]})")
    old_settings = before.get("settings") if isinstance(before.get("settings"), dict) else {}
    for key, value in now["settings"].items():
        if old_settings.get(key) != value:
            changes.append(f"with {key} {old_settings.get(key)!r} (this run: {value!r})")
    if before.get("seed_key") != now["seed_key"]:
        changes.append(f"with chunk seeds named {before.get('seed_key')!r} (this run: {now['seed_key']!r}; seeds "
                       "follow the path below the input folder)" if before.get("seed_key") else
                       f"with chunk seeds named by its file name alone, before they followed the path below the input"
                       f" folder (this run: {now['seed_key']!r})")
    for key, what in (("checkpoint_sha256", "checkpoint"), ("codec_weights", "VAE weights")):
        if before.get(key) != now[key]:
            changes.append(f"with other {what} ({str(before.get(key))[:12]}; this run: {str(now[key])[:12]})")
    if before.get("precision") != now["precision"]:
        changes.append(f"in {before.get('precision')} (this run: {now['precision']})")
    return changes


def _recorded_seed_key(record: dict[str, Any], before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The seed key of an output whose sidecar predates recording it: this run's when its first chunk's recorded
    seed is this run's (or when the seed setting differs anyway, which is named on its own), else None (named by
    the file name alone: a file below the input folder's top, seeded before seeds followed its path)."""
    old_settings = before.get("settings")
    seed = now["settings"]["seed"]
    if not isinstance(old_settings, dict) or old_settings.get("seed") != seed:
        return now["seed_key"]
    seeds = record.get("seeds")
    return now["seed_key"] if isinstance(seeds, list) and seeds[:1] == [chunk_seed(seed, now["seed_key"], 0)] else None


def existing_output(out: Path, mix: Path | None, made_with: dict[str, Any]) -> tuple[str, str]:
    """What is at an output's paths, and whether it may be written: ``("new", "")``: nothing there;
    ``("done", "")``: the output, made from this input with these settings, whole; ``("stale", why)``: made from
    another input or with other settings or weights; ``("changed", why)``: a whole audio file (as many frames as were
    written, or more) with other bytes than were written, edited since perhaps; ``("foreign", why)``: a file at the
    output or mix path that samuel generate did not write (no sidecar of ours names it: the sidecar is written
    before the audio, so our own audio never lacks one). Stale, changed and foreign files are named and never
    overwritten without ``--overwrite``. ``("torn", why)``: ours but unfinished (the pending sidecar of a run that
    stopped), cut short, not readable as audio, or the requested mix missing: redone. Staleness is checked first, so
    a stale output is never overwritten because its mix is missing."""
    side = sidecar_path(out)
    if not side.exists():
        if out.exists():
            return "foreign", (f"{out} exists and has no sidecar {side.name}: samuel generate did not write it (or "
                               "a samuel-bench older than the pending sidecar was stopped between writing it and "
                               "its sidecar)")
        if mix is not None and mix.exists():
            return "foreign", f"its mix path {mix} holds a file that samuel generate did not write"
        return "new", ""
    try:
        record = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return "torn", f"has an unreadable sidecar {side} ({type(err).__name__}: {err})"
    if not isinstance(record, dict):
        return "torn", f"has a sidecar {side} that is not a JSON object"
    if record.get(PENDING_KEY):
        if mix is not None and mix.exists() and not _names_mix(record, mix):
            return "foreign", f"its mix path {mix} holds a file that samuel generate did not write"
        return "torn", f"was being written when a run stopped (its sidecar {side.name} is still the pending record)"
    before, files = record.get("made_with"), record.get("files")
    if not isinstance(before, dict) or not isinstance(files, dict):
        return "stale", (f"by an older samuel-bench, whose sidecar {side} records neither what the output was made "
                         "from nor its files' hashes, so it cannot be checked")
    if "seed_key" not in before:  # recorded since seeds follow the path below the input; older: their seeds tell
        before = {**before, "seed_key": _recorded_seed_key(record, before, made_with)}
    changes = _describe_changes(before, made_with)
    if changes:
        return "stale", "; ".join(changes)
    for what, path in (("output", out), ("mix", mix)):
        if path is None:
            continue
        entry = files.get(what)
        if not isinstance(entry, dict):
            if path.exists():
                return "foreign", (f"{out} was made without a mix, and the mix path {path} holds a file that "
                                   "samuel generate did not write")
            return "torn", f"was written without the mix {path} this run asks for"
        if not path.is_file():
            return "torn", f"lacks its {what} file {path}"
        size = path.stat().st_size
        if size == entry.get("bytes") and file_sha256(path) == entry.get("sha256"):
            continue
        differs = (f"{size} bytes, not the {entry.get('bytes')} written" if size != entry.get("bytes") else
                   "another sha256 than the one written")
        frames, written = _audio_frames(path), entry.get("frames")
        if frames is not None and isinstance(written, int) and frames >= written:
            return "changed", (f"its {what} file {path} is not the one written ({differs}), though it is whole "
                               f"audio ({frames} frames, {written} written): changed since, perhaps edited")
        cut = ("not readable as audio" if frames is None else
               f"{frames} frames, {written} written" if isinstance(written, int) else "cut short, or changed since")
        return "torn", f"is not what its sidecar records: {path} has {differs} ({cut})"
    return "done", ""


PRECISIONS = ("fp32", "bf16", "fp16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic in hardware


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16: Zen 4, Cooper Lake; AMX-BF16: Sapphire Rapids
    and later), read from /proc/cpuinfo's flags (``cpuinfo``: that text, for tests). Elsewhere bf16 is no faster than
    fp32: oneDNN emulates it with AVX512BW, and without AVX-512 torch runs it far slower
    (:func:`cpu_bf16_kernels_missing`); False where the flags cannot be read (not Linux)."""
    flags = cpu_flags(cpuinfo)
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def cpu_bf16_kernels_missing() -> str | None:
    """Why bf16 on this CPU runs outside oneDNN, or None when oneDNN has bf16 kernels here.

    oneDNN's bf16 convolutions and matmuls need AVX512BW/VL/DQ (converting, at about fp32's speed) or AVX512-BF16 /
    AMX (native). On an AVX2-only CPU torch falls back to reference loops: on a 2-core AVX2 EPYC VM a bf16 Conv1d
    (128 channels, kernel 7) ran at 0.4 GFLOP/s against 67 in fp32, and a 1024^3 matmul at 0.9 against 69
    (docs/benchmarks.md, eighteenth pass), so a clip that takes minutes in fp32 takes hours in bf16."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None and probe():
        return None
    return (f"oneDNN has no bf16 kernels on this CPU (torch sees {torch.backends.cpu.get_cpu_capability()}; they "
            "need AVX512BW/VL/DQ, AVX512-BF16 or AMX), so bf16 runs on torch's reference loops, 75-190x slower "
            "than fp32 in our measurements")


def warn_if_bf16_is_slow(what: str, device: torch.device | str) -> None:
    """Warn that bf16 asked for (``what``) on ``device`` will be slow where it is a CPU without oneDNN's bf16
    kernels (:func:`cpu_bf16_kernels_missing`); nothing elsewhere."""
    if torch.device(device).type == "cpu" and (why := cpu_bf16_kernels_missing()):
        import warnings

        warnings.warn(f"{what} asked for on this CPU: {why}; fp32 (what auto picks here) is the fast one",
                      stacklevel=3)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``precision`` as run: "auto" is bf16 where the device computes it natively (a CUDA GPU that supports it, a
    CPU with AVX512-BF16 or AMX; :func:`cpu_has_native_bf16`), else fp32; the others stand as given (bf16 on a CPU
    without oneDNN's bf16 kernels with a warning that says why it will be slow: :func:`cpu_bf16_kernels_missing`)."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
        if precision == "bf16":
            warn_if_bf16_is_slow("precision bf16", device)
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if kind == "cpu" and cpu_has_native_bf16() else "fp32"


def codec_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The VAE's dtype for ``precision``: the U-Net runs as a bf16 twin (Accompanist.twin), the VAE in this dtype
    outright (on a Zen 4 CPU the bf16 VAE was 2.5x faster than diffusers' fp32 one, at 42 dB SNR decoding and 37 dB
    encoding, docs/benchmarks.md). fp16 stays fp32 on CPUs, whose fp16 convolutions are slow or missing."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16" and torch.device(device).type == "cuda":
        return torch.float16
    return torch.float32


def _autocast(fn: Callable[[Tensor, Tensor], Tensor], device: torch.device, precision: str
              ) -> Callable[[Tensor, Tensor], Tensor]:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16

    def wrapped(x: Tensor, t: Tensor) -> Tensor:
        with torch.autocast(device.type, dtype=dtype):
            return fn(x, t).float()

    return wrapped


def _message(src: Path, err: Exception) -> str:
    text = str(err)
    return text if str(src) in text else f"{src}: {type(err).__name__}: {text}"
