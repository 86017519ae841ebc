"""One owner for the passes: ``evaluate(EvalConfig) -> EvalResult``.

    prepare   the manifest (built from the request; an existing one with other items is replaced, and samples
              of items no longer in it become stale)
    per model params -> generate -> time      (one model loaded at a time)
    score     the current samples only (their ids belong to this manifest and these model specs)
    report    injected by the caller (``reports`` sits above ``bench``), e.g. reports.cli's tables and HTML

Everything is written through :class:`bench.runfolder.RunFolder` while its lock is held. Under ``torchrun`` every
rank takes a disjoint slice of the manifest for generation and timing; rank 0 waits for all, merges, scores and
reports. ``samuel-eval`` only parses its command line into :class:`EvalConfig` and calls :func:`evaluate`.

Exit codes (:attr:`EvalResult.exit_code`): 0 all done; 1 some items, models, scores or the report failed (listed in
``failures``); 2 bad usage (raised before any work as :class:`~bench.options.UsageError`, RunFolderError or
ManifestError).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from baselines import registry
from baselines.base import (
    RANDOM_WEIGHTS_LABEL,
    WEIGHTS_MODES,
    AdapterError,
    GenerationRequest,
    Generator,
    ItemError,
    WeightsChoice,
)
from bench import options as o
from bench import part_sums
from bench.cache import BadEntry, Cache, JsonStore, Key
from bench.manifest import Item, Manifest, ManifestError, folder_manifest, safe_name, sample_id, synthetic_manifest
from bench.metrics.pitch import DEFAULT_PITCH_TRACKER, PITCH_TRACKERS
from bench.options import option
from bench.probe import DEFAULT_PROBE_ITEMS, describe_probe, probe_model
from bench.progress import Stages
from bench.results import (
    RESULTS_FORMAT,
    Describe,
    Generation,
    ManifestSummary,
    ModelResult,
    Params,
    Provenance,
    Rejected,
    RunConfig,
    RunResults,
    Timing,
    Weights,
)
from bench.runfolder import UNRECORDED_SOURCE, NewSample, RunFolder, SampleRecord, SampleStore
from bench.scoring.config import KAD_BANDWIDTH_RULES, RESAMPLERS, SCORE_ON
from bench.stats import median_ci
from bench.sweep import SWEEPABLE, read_sweep, run_sweep, sweep_record, sweepable_precisions
from bench.timing import TimingMode, available_bytes, depth_reason, time_model
from bench.windows import LOW_ACTIVITY, WindowRule, parse_window
from samuel.atomic import DiskFull
from samuel.audio import undecodable_audio_files
from samuel.dist import Dist, barrier, finish_dist, init_dist, rank_device
from samuel.hashing import file_sha256
from samuel.provenance import RUN_PACKAGES, device_facts, package_versions, provenance

PASSES = ("params", "generate", "probe", "time", "score", "report")
MODEL_PASSES = ("params", "generate", "time")  # named in the stage line; the probe logs its own line
UNMATCHED_SHOWN = 10  # unmatched files named in the log (all of them in results.json)
# keeps `samuel-eval --models all --n 100` near 25 minutes on 2 AMX cores, and still times six SAMUeL items
# (a 95% CI) where one takes up to 30 s; Stable Audio Open and ACE-Step get 3-4 (docs/benchmarks.md)
CPU_TIME_BUDGET_S = 150.0
DEFAULT_DURATION_S = 47.55  # one SAMUeL chunk (bench.synthetic.DEFAULT_DURATION_S)


def _models(raw: str) -> tuple[str, ...]:
    try:
        return tuple(registry.expand(raw))
    except registry.UnknownModelError as err:
        raise ValueError(str(err)) from None


def _passes(raw: str) -> tuple[str, ...]:
    names = o.csv(raw)
    if bad := sorted(set(names) - set(PASSES)):
        raise ValueError(f"unknown pass(es) {', '.join(bad)}; choose from {', '.join(PASSES)}")
    return tuple(p for p in PASSES if p in names)


def _resamples(raw: str) -> int:
    from bench.bootstrap import MIN_RESAMPLES

    value = o.positive_int(raw)
    if value < MIN_RESAMPLES:
        raise ValueError(f"must be >= {MIN_RESAMPLES}, got {raw!r}: with fewer resamples a 95% percentile interval's "
                         "ends rest on one or two resampled means and can miss the mean itself (default 1000)")
    return value


def _metric_groups(raw: str) -> tuple[str, ...]:
    from bench.scoring.registry import check_groups

    return tuple(check_groups(o.csv(raw)))


def _default_groups() -> tuple[str, ...]:
    from bench.scoring.registry import group_names

    return tuple(group_names())


@dataclass(frozen=True)
class EvalConfig:
    """Everything a run depends on; each field is also its command-line option (bench.options). It travels into
    results.json."""

    models: tuple[str, ...] = option(flags=["--models"], parse=_models, metavar="LIST", factory=lambda: _models("all"),
                                       help="'all' or a comma-separated list; outputs:NAME=DIR adds a folder of "
                                            "pre-generated files")
    # -n / --items too: under torchrun, torchrun's own parser takes "--n" for an abbreviation of its options
    n: int = option(100, flags=["--n", "-n", "--items"], parse=o.positive_int, help="items in the manifest (>= 1)")
    out: Path = option(Path("samuel-eval-out"), flags=["--out"], parse=o.path, help="the run folder")
    weights: str = option("auto", flags=["--weights"], choices=WEIGHTS_MODES,
                            help="auto: pretrained where found, random otherwise (said per model)")
    weights_paths: dict[str, str] = option(flags=["--weights-path"], kind="append", parse=o.name_value,
                                             combine=o.pairs, metavar="NAME=PATH", factory=dict,
                                             help="where a model's weights are: a local path or a Hugging Face id "
                                                  "(read from the cache)")
    model_options: dict[str, dict[str, Any]] = option(
        flags=["--option"], kind="append", parse=o.name_value, combine=o.model_options, metavar="MODEL.KEY=VALUE",
        factory=dict, help="adapter option, e.g. samuel.steps=50, samuel.preset=tiny, musicgen-small.top_k=250")
    vocals: Path | None = option(None, flags=["--vocals"], parse=o.path,
                                   help="a folder of vocal files (default: the embedded synthetic set)")
    references: Path | None = option(None, flags=["--references"], parse=o.path,
                                       help="true accompaniments for --vocals, matched by file stem")
    prompt: str | None = option(None, flags=["--prompt"], help="text prompt for text-conditioned models")
    duration_s: float | None = option(None, flags=["--duration"], parse=o.positive_seconds,
                                        help=f"seconds per item, > 0 (default {DEFAULT_DURATION_S}, one SAMUeL chunk)")
    start_s: float = option(0.0, flags=["--start"], parse=o.nonnegative_seconds,
                              help="where each item's window starts in its vocal and reference files (seconds); "
                                   "the same as --window SECONDS")
    window: str = option("start", flags=["--window"], parse=parse_window, metavar="auto|start|SECONDS",
                           help="where --vocals items are cut from each song: 'start' from 0 s (default), SECONDS "
                                "from there, 'auto' the windows with the most vocal activity (skips intros; "
                                "bench.windows)")
    windows_per_song: int = option(1, flags=["--windows-per-song"], parse=o.positive_int, metavar="K",
                                     help="items per --vocals song (>= 1): auto's K most active non-overlapping "
                                          "windows, or K consecutive ones; ids <stem>__w1..K when K > 1")
    downmix: bool = option(False, flags=["--downmix"], kind="flag",
                             help="fold vocals of more than 2 channels to stereo instead of rejecting them")
    seed: int = option(0, flags=["--seed"], parse=o.any_int, help="base seed of the items and the statistics")
    timing: str = option("auto", flags=["--timing"], choices=("auto", "full", "extrapolate", "depth"),
                           help="auto: each model's default (extrapolate for the large baselines; depth, its "
                                "denoiser cut to a few blocks and scaled up, for one that does not fit)")
    time_items: int = option(6, flags=["--time-items"], parse=o.positive_int,
                               help="items timed per model (>= 6 for a 95%% CI)")
    time_budget_s: float = option(-1.0, flags=["--time-budget"], parse=o.budget_seconds, metavar="SECONDS",
                                    help="stop timing a model's further items after this long (>= 2 items are "
                                         "always timed, and 6 for a 95%% CI when they fit in 1.5x it); default: "
                                         "150 s on CPU, none on GPU")
    units: int | None = option(None, flags=["--units"], parse=o.positive_int,
                                 help="steps/frames measured per item with --timing extrapolate")
    passes: tuple[str, ...] = option(PASSES, flags=["--passes"], parse=_passes,
                                       help=f"any of {', '.join(PASSES)}")
    retime: bool = option(False, flags=["--retime"], kind="flag",
                            help="re-time models whose stored timing matches (default: a resumed run reuses it)")
    html: Path | None = option(None, flags=["--html"], parse=o.path, metavar="PATH",
                                 help="where the HTML report goes (default DIR/report.html)")
    metrics: tuple[str, ...] = option(flags=["--metrics"], parse=_metric_groups, factory=_default_groups,
                                        help="score groups, comma-separated (see bench.scoring.registry)")
    embedders: tuple[str, ...] = option(("vggish",), flags=["--embedders"], parse=o.csv,
                                          help="FAD embedders, comma-separated (vggish, clap-laion-audio, "
                                               "clap-laion-music, encodec-emb)")
    embedder_weights: dict[str, str] = option(flags=["--embedder-weights"], kind="append", parse=o.name_value,
                                                combine=o.pairs, metavar="NAME=PATH", factory=dict,
                                                help="an embedder's checkpoint: a local path or a Hugging Face id")
    aesthetics_weights: str | None = option(None, flags=["--aesthetics-weights"], metavar="PATH",
                                              help="audiobox-aesthetics checkpoint (default: "
                                                   "facebook/audiobox-aesthetics from the cache)")
    fad_reference: Path | None = option(None, flags=["--fad-reference"], parse=o.path, metavar="DIR|NPZ",
                                          help="FAD reference: an audio folder or a statistics .npz with "
                                               "<embedder>.mu/.cov keys (default: the items' true accompaniments)")
    score_random: bool = option(False, flags=["--score-random"], kind="flag",
                                  help="also score samples written by random-weight models (labelled; never in "
                                       "Table I)")
    resamples: int = option(1000, flags=["--resamples"], parse=_resamples,
                              help="bootstrap resamples for every CI (>= 100)")
    baseline: str = option("samuel", flags=["--baseline"], metavar="MODEL",
                             help="paired differences (per clip and FAD/KAD/APA): every model minus this one, "
                                  "p-values Holm-adjusted per family")
    kad_bandwidth: str = option("reference", flags=["--kad-bandwidth"], choices=KAD_BANDWIDTH_RULES,
                                  help="KAD kernel bandwidth: median pairwise distance of the reference set "
                                       "(one kernel for every model) or of each eval set, as kadtk computes it")
    resampler: str = option("soxr", flags=["--resampler"], choices=RESAMPLERS,
                              help="how the embedders and audiobox-aesthetics resample: soxr (default), "
                                   "torchaudio-default (the audiobox-aesthetics CLI's), torchaudio-kaiser-best "
                                   "(fadtk's since Oct 2023)")
    score_on: str = option("accompaniment", flags=["--score-on"], choices=tuple(SCORE_ON),
                             help="what signal, aesthetics and FAD/KAD score: the accompaniment (default), the "
                                  "vocal + accompaniment mix loudness-matched as APA's (in scores.json 'mix', Table "
                                  "I rows '(mix)'), or both; adherence and APA always read the accompaniment")
    pitch_tracker: str = option(DEFAULT_PITCH_TRACKER, flags=["--pitch-tracker"], choices=PITCH_TRACKERS,
                                help="adherence's pitch tracker: swift-f0 (default; a small CNN whose weights ship in "
                                     "its wheel, about 8x faster, the same pitch class as pYIN on >= 95%% of voiced "
                                     "frames) or pyin (librosa's pYIN, the original)")
    score_workers: int | None = option(None, flags=["--score-workers"], parse=o.positive_int, metavar="N",
                                       help="processes for the per-clip metrics without weights (signal, "
                                            "adherence); default one per core once there are 5 minutes of audio "
                                            "to score; 1 scores in this process")
    feature_cache: Path | None = option(None, flags=["--feature-cache"], parse=o.path, metavar="DIR",
                                        help="where vocal features (pitch track, onsets) are cached by content, "
                                             "shared by every run pointed at it (default DIR/cache/vocal-features)")
    probe: int = option(DEFAULT_PROBE_ITEMS, flags=["--probe"], parse=o.probe_items, metavar="N",
                          help="responsiveness probe on the first N items (N >= 2) of every model that takes a "
                               "vocal: each regenerated with another of them's vocal, with silence and with a second "
                               "seed (random weights: plumbing only, one of the N); 0 disables")
    sweep_steps: tuple[int, ...] = option((), flags=["--sweep-steps"], parse=o.step_counts, metavar="N,N,...",
                                          help="the steps x precision sweep: generate the first item at each of "
                                               "these sampler step counts in each --sweep-precisions, timed and "
                                               "compared with fp32 (SAMUeL and Stable Audio Open; plotted in the "
                                               "report); off by default")
    sweep_precisions: tuple[str, ...] = option(("fp32", "bf16"), flags=["--sweep-precisions"], parse=o.precisions,
                                               metavar="P,P", help="precisions of the sweep (default fp32,bf16)")
    generate_random: bool = option(False, flags=["--generate-random"], kind="flag",
                                     help="also write samples from random-weight models (labelled .random)")
    device: str = option("cpu", flags=["--device"], parse=o.device, help="cpu, cuda or cuda:N")
    no_progress: bool = option(False, flags=["--no-progress"], kind="flag", help="no progress bars")

    @property
    def progress(self) -> bool:
        return not self.no_progress

    @property
    def duration(self) -> float:
        return self.duration_s if self.duration_s is not None else DEFAULT_DURATION_S

    def score_config(self) -> Any:
        from bench.scoring.config import ScoreConfig

        return ScoreConfig(groups=self.metrics, embedders=self.embedders, embedder_weights=self.embedder_weights,
                           aesthetics_weights=self.aesthetics_weights, fad_reference=self.fad_reference,
                           score_random=self.score_random, resamples=self.resamples, seed=self.seed,
                           kad_bandwidth=self.kad_bandwidth, resampler=self.resampler, baseline=self.baseline,
                           device=self.device, score_on=self.score_on, pitch_tracker=self.pitch_tracker,
                           score_workers=self.score_workers, feature_cache=self.feature_cache)

    def to_dict(self) -> dict[str, Any]:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


# -- what a run leaves: typed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Something that did not work: where (model, pass, item) and why. Any failure makes the exit code 1."""

    stage: str  # prepare | model | generate | probe | time | score | report
    what: str  # model name, item id or file
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "what": self.what, "message": self.message}


@dataclass
class ModelRun:
    """One model's entry in results.json while the passes fill it in; :meth:`to_result` freezes it into the
    :class:`bench.results.ModelResult` that results.json is written from."""

    spec: str
    name: str
    status: str = "run"  # run | not run | failed
    reason: str = ""
    describe: Describe | None = None
    weights: Weights | None = None
    model_key: dict[str, Any] | None = None
    params: Params | None = None
    generated: bool | None = None
    generation_note: str = ""
    generation: Generation | None = None
    timing: Timing | None = None
    unmatched_files: tuple[str, ...] = ()  # files of an outputs folder that match no item (Generator.unmatched_files)

    def to_result(self) -> ModelResult:
        return ModelResult(name=self.name, spec=self.spec, status=self.status, reason=self.reason,
                           describe=self.describe, weights=self.weights, model_key=self.model_key,
                           params=self.params, generated=self.generated, generation_note=self.generation_note,
                           generation=self.generation, timing=self.timing)

    def to_dict(self) -> dict[str, Any]:
        return self.to_result().to_json()


@dataclass
class EvalResult:
    results: dict[str, Any]  # results.json (rank 0); this rank's summary elsewhere
    scores: dict[str, Any] | None = None
    failures: list[Failure] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # tables and report

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


class ReportPass(Protocol):
    """The report pass, injected by the layer above (reports): renders what the run folder holds."""

    def __call__(self, run: RunFolder, cfg: EvalConfig, log: Callable[[str], None]) -> list[Path]: ...


@dataclass
class EvalContext:
    cfg: EvalConfig
    run: RunFolder
    manifest: Manifest
    dist: Dist
    log: Callable[[str], None]
    stages: Stages | None
    failures: list[Failure] = field(default_factory=list)

    def fail(self, stage: str, what: str, message: str) -> None:
        self.failures.append(Failure(stage, what, message))
        self.log(f"  FAILED {stage} {what}: {message}")


# -- prepare --------------------------------------------------------------------------------------------------


MAX_WINDOW_NOTES = 10  # window notes printed one per line; the rest are counted (all are in the manifest)


def requested_manifest(cfg: EvalConfig, run: RunFolder, log: Callable[[str], None]) -> Manifest:
    fad_folder = cfg.fad_reference if cfg.fad_reference is not None and cfg.fad_reference.is_dir() else None
    for flag, folder, what in (("--vocals", cfg.vocals, "vocals"), ("--references", cfg.references, "references"),
                               ("--fad-reference", fad_folder, "FAD reference clips")):
        # the run's own samples would be read back as inputs by the next run (a rerun made them items)
        if folder is not None and run.lies_inside(folder):
            raise ManifestError(f"--out {run.root} lies inside {flag} {folder}: the run's samples would be read as "
                                f"{what} by the next run; pick a run folder outside it")
    if cfg.vocals is not None:
        kwargs = {"prompt": cfg.prompt} if cfg.prompt else {}
        try:
            rule = WindowRule.from_option(cfg.window, cfg.start_s, cfg.windows_per_song)
        except ValueError as err:  # a ManifestError: samuel-eval's bad usage (exit 2), before any work
            raise ManifestError(str(err)) from None
        summed: list[bool] = []  # per stem-folder song whose vocal tracks were summed: reused from an earlier run

        def sum_vocals(song: str, tracks: list[Path]) -> tuple[Path, bool]:
            written = part_sums.vocal_sum(tracks, run.inputs_dir, song)
            summed.append(written[1])
            return written

        manifest = folder_manifest(cfg.vocals, cfg.n, references=cfg.references, duration_s=cfg.duration,
                                   base_seed=cfg.seed, downmix=cfg.downmix, window=rule, sum_vocals=sum_vocals,
                                   **kwargs)
        if songs := manifest.request.get("stem_folder_songs"):
            tracks = sum(s["other_tracks"] for s in songs.values())
            log(f"manifest: {len(songs)} song(s) keep their stems in folders of tracks (MoisesDB layout), e.g. "
                f"{next(iter(songs))}: each is one item, whose vocal is its vocals folder's track"
                + (f"s summed when there are several ({len(summed)} sum(s) in "
                   f"{run.inputs_dir / part_sums.SUMS_FOLDER}, {sum(summed)} reused from an earlier run)"
                   if summed else "")
                + f"; the {tracks} track(s) of their other folders are not vocals")
        log(f"manifest: {len(manifest.items)} items cut from {cfg.vocals}: {rule.describe()}")
        if reached := manifest.request.get("n_reached"):
            left = [text for count, text in (
                (reached["inputs_not_read"], f"{reached['inputs_not_read']} input(s) in path order not read"),
                (reached["windows_left"], f"{reached['windows_left']} window(s) of the last song read left out"))
                if count]
            log(f"manifest: --n {cfg.n} reached: {' and '.join(left)} (files rejected among those are not named; a "
                "larger --n takes them)")
        if cfg.n is not None and len(manifest.items) < cfg.n:
            log(f"manifest: {cfg.n} items asked for (--n); {cfg.vocals} gives {len(manifest.items)} "
                f"({len(manifest.rejected)} file(s) rejected, listed below; --windows-per-song K cuts up to K items "
                "from each song): every n in the tables is at most that")
        cuts = manifest.request.get("windows", {})
        noted = [(item_id, cut["note"]) for item_id, cut in cuts.items() if cut.get("note")]
        for item_id, note in noted[:MAX_WINDOW_NOTES]:
            log(f"manifest: {item_id}: {note}")
        if len(noted) > MAX_WINDOW_NOTES:
            log(f"manifest: and {len(noted) - MAX_WINDOW_NOTES} more window notes ({run.manifest_path}: request, "
                "windows)")
        quiet = [i for i, cut in cuts.items() if cut.get("activity") is not None and cut["activity"] < LOW_ACTIVITY]
        if quiet and rule.mode != "auto":
            log(f"manifest: {len(quiet)} of {len(cuts)} items have the vocal active in under {LOW_ACTIVITY:.0%} of "
                f"their window ({', '.join(quiet[:5])}{' and more' if len(quiet) > 5 else ''}): whole songs "
                "open with intros; --window auto cuts the windows where the vocal sings most")
        if others := manifest.request.get("other_stems"):
            log(f"manifest: {len(others)} file(s) named as a song's other stems (drums, bass, other, mixture, "
                f"accompaniment) beside its vocals file are not vocals, so no item is made of them (e.g. {others[0]})")
        manifest = part_sums.materialize(manifest, run.inputs_dir, log)
        unmatched = [i.item_id for i in manifest.items if i.reference is None]
        undecodable = undecodable_audio_files(cfg.references) if cfg.references is not None else []
        if undecodable:
            shown = ", ".join(str(p.relative_to(cfg.references)) for p in undecodable[:5])
            log(f"manifest: {len(undecodable)} file(s) in {cfg.references} are audio libsndfile cannot decode, so no "
                f"item takes them as its reference: {shown}{' and more' if len(undecodable) > 5 else ''} "
                "(convert them to FLAC or WAV, e.g. with ffmpeg, to use them)")
        if cfg.references is not None and unmatched:
            shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
            log(f"manifest: {len(unmatched)} of {len(manifest.items)} items have no reference in {cfg.references} "
                f"(no decodable file with their stem): {shown}; the reference row fails on them, and FAD's default "
                "reference set and the adherence anchors go without them")
        return manifest
    if cfg.window != "start" or cfg.windows_per_song != 1 or cfg.start_s:
        raise ManifestError("--window, --windows-per-song and --start cut --vocals songs; the embedded set's items "
                            "are whole")
    if cfg.references is not None:
        raise ManifestError("--references needs --vocals (the embedded set brings its own accompaniments)")
    log(f"manifest: the embedded synthetic set ({cfg.n} items, {cfg.duration:.2f} s) in {run.inputs_dir}")
    return synthetic_manifest(run.inputs_dir, cfg.n, duration_s=cfg.duration, base_seed=cfg.seed)


def prepare(cfg: EvalConfig, run: RunFolder, log: Callable[[str], None], requested: Manifest | None = None
            ) -> Manifest:
    """The manifest this run asks for. A stored manifest with the same items is kept as it is; one with other items
    (another --n, folder or window) or a damaged one is replaced, and the change is said. Samples of items no
    longer in the manifest are then stale: listed in the report, removed by ``samuel-eval clean``."""
    manifest = requested if requested is not None else requested_manifest(cfg, run, log)
    stored, damage = run.stored_manifest()
    if damage:
        log(f"manifest: the stored one is damaged and is rewritten ({damage})")
    if stored is not None and stored.items == manifest.items and stored.rejected == manifest.rejected:
        log(f"manifest: reusing {run.manifest_path} ({len(stored.items)} items, {stored.source})")
        return stored
    if stored is not None:
        # an item is kept when its content is (Item.key: samples are named by it), wherever its files now lie
        old, new = {i.item_id: i for i in stored.items}, {i.item_id: i for i in manifest.items}
        kept = [k for k, v in new.items() if k in old and old[k].key() == v.key()]
        # a reference gained or lost is not a move (the reference row's samples record their source file's
        # sha256, so a reference file whose content differs is read anew either way)
        gained = sum(1 for k in kept if old[k].reference is None and new[k].reference is not None)
        lost = sum(1 for k in kept if old[k].reference is not None and new[k].reference is None)
        moved = sum(1 for k in kept if old[k] != new[k] and (old[k].reference is None) == (new[k].reference is None))
        added = sum(1 for k in new if k not in old)
        changed, dropped = len(new) - len(kept) - added, len(set(old) - set(new))
        parts = ([f"{moved} of them with their files at another path, e.g. a moved run folder: same content, so "
                  "their samples, timings and scores stay valid"] if moved else [])
        parts += [f"{count} of them {what} a reference accompaniment" for count, what in
                  ((gained, "now with"), (lost, "now without")) if count]
        where = f" ({'; '.join(parts)})" if parts else ""
        # a new item has no samples yet; a changed or dropped one leaves samples no item names any more
        stale = (" (the samples of the changed and dropped ones are now stale; `samuel-eval clean` removes them)"
                 if changed or dropped else "")
        log(f"manifest: the request differs from the stored manifest: {len(kept)} items kept{where}, {changed} "
            f"changed, {added} new, {dropped} dropped{stale}")
    run.write_manifest(manifest)
    for r in manifest.rejected:
        log(f"manifest: rejected {r.path}: {r.problem}")
    return manifest


# -- adapters -------------------------------------------------------------------------------------------------


def build_adapter(spec: str, cfg: EvalConfig) -> Generator:
    name = registry.parse_outputs_spec(spec)[0] if spec.startswith(registry.OUTPUTS_PREFIX) else spec
    choice = WeightsChoice(cfg.weights, cfg.weights_paths.get(name))  # type: ignore[arg-type]
    return registry.create(spec, choice, device=cfg.device, **cfg.model_options.get(name, {}))


def model_key(adapter: Generator) -> dict[str, Any]:
    """What makes two runs of a model the same model for sample ids (and so for stored timings and probes): name,
    weights, options, and the precision they resolve to here: an option left at "auto" resolves by device and by
    release (ACE-Step's default went from fp32 to bf16 on CPUs with native bf16), and a sample or a time made in
    one precision is never reused as the other's. Random weights add the adapter's ``random_draw`` when it names
    one, so that samples of an earlier draw are not taken for this one's."""
    s = adapter.status
    key = {"name": adapter.name, "weights": s.kind, "weights_source": s.source if s.kind != "random" else None,
           "weights_sha256": s.sha256, "options": {k: str(v) for k, v in sorted(adapter.options.items())},
           "precision": adapter.precision()}
    if s.kind == "random" and adapter.random_draw:  # another random draw is another model (only when named)
        key["random_draw"] = adapter.random_draw
    return key


# -- generate -------------------------------------------------------------------------------------------------


def sample_store(run: RunFolder, model: str, key: dict[str, Any], random_weights: bool) -> SampleStore:
    return SampleStore(run, model, random_weights, key)


def current_sample(run: RunFolder, model: str, item: Item, key: dict[str, Any], random_weights: bool
                   ) -> tuple[SampleRecord | None, str | None]:
    """(the valid sample of this item and model spec, None), (None, None) if never written, or (None, why) when
    what is on disk is damaged and must be redone."""
    store = sample_store(run, model, key, random_weights)
    cache_key = store.key(item.item_id, sample_id(item, key))
    try:
        return store.read(store.path_for(cache_key), cache_key), None
    except FileNotFoundError:
        return None, None
    except BadEntry as err:
        return None, str(err)


class ModelLoadError(RuntimeError):
    """The model could not be loaded: a failure of the model, not of the item being generated."""


def generate_new(adapter: Generator, item: Item) -> NewSample:
    """One generation, checked (audio present and finite), not yet written."""
    try:
        adapter.load()  # idempotent; a failure here is the model's, never one item's
    except Exception as err:
        raise ModelLoadError(f"{type(err).__name__}: {err}") from err
    t0 = time.perf_counter()
    out = adapter.generate([item.request()])[0]
    seconds = time.perf_counter() - t0
    audio = out.audio.astype(np.float32)
    if audio.size == 0:
        raise ItemError(f"{adapter.name}: item {item.item_id!r}: the model returned no audio")
    if not np.all(np.isfinite(audio)):
        raise ItemError(f"{adapter.name}: item {item.item_id!r}: the output holds NaN or infinite samples")
    random_weights = adapter.status.is_random
    return NewSample(audio, out.sample_rate, seconds, adapter.status.kind,
                     RANDOM_WEIGHTS_LABEL if random_weights else None, dict(out.info))


def _with_source(adapter: Generator, item: Item, source_sha256: str | None) -> NewSample:
    """:func:`generate_new`, its record carrying the sha256 of the file it was read from (rows of files)."""
    sample = generate_new(adapter, item)
    if source_sha256 is not None:
        sample.info["source_sha256"] = source_sha256
    return sample


def _source(adapter: Generator, item: Item, digests: dict[Path, str | None]) -> tuple[str, str] | None:
    """(path, sha256) of the file a row of files reads ``item``'s sample from; None for generated samples, or for
    a file that cannot be read (the generation names why). A row of files made elsewhere keys its samples by the
    item, not by the file: an edited reference kept its old sample and scores. The sample store compares the
    sha256 with the stored sample's record (bench.runfolder.SampleStore), so a changed file is read again."""
    path = adapter.source_file(item.request())
    if path is None:
        return None
    if path not in digests:  # once per run: a song's windows share one file
        try:
            digests[path] = file_sha256(path)
        except OSError:
            digests[path] = None
    digest = digests[path]
    return None if digest is None else (str(path), digest)


def generate_pass(ctx: EvalContext, adapter: Generator, key: dict[str, Any], items: tuple[Item, ...]
                  ) -> dict[str, int]:
    """One sample per item of this rank through ``cache.get(sample key, generate)``: a valid sample is reused, a
    damaged one redone (and said), every attempt recorded. One failing item is recorded and the pass goes on; a
    model that cannot load fails as a model (ModelLoadError propagates)."""
    counts = {"ok": 0, "skipped": 0, "redone": 0, "error": 0}
    run, d = ctx.run, ctx.dist
    store = sample_store(run, adapter.name, key, adapter.status.is_random)
    cache: Cache[SampleRecord] = Cache(store.path_for, store)
    bar = _bar(len(items), f"generate {adapter.name}", ctx.cfg.progress and d.main)
    digests: dict[Path, str | None] = {}  # source file -> sha256
    unrecorded = 0
    for item in items:
        sid = sample_id(item, key)
        rec: dict[str, Any] = {"model": adapter.name, "item_id": item.item_id, "sample_id": sid}
        try:
            source = _source(adapter, item, digests)
            sample = cache.get(store.key(item.item_id, sid, source),
                               partial(_with_source, adapter, item, source[1] if source else None))
        except (KeyboardInterrupt, ModelLoadError, DiskFull):
            raise
        except (ItemError, AdapterError, ValueError, OSError) as err:
            rec.update(status="error", message=str(err))
            counts["error"] += 1
            ctx.log(f"  {adapter.name}: {err}")
        except Exception as err:  # a model failing inside one item (out of memory, a shape bug): that item only
            rec.update(status="error", message=f"{type(err).__name__}: {err}")
            counts["error"] += 1
            ctx.log(f"  {adapter.name}: item {item.item_id}: {type(err).__name__}: {err}")
            _release_memory()
        else:
            event = cache.events[-1]
            if event.outcome == "reused":
                rec.update(status="skipped")
                counts["skipped"] += 1
            else:
                rec.update(status="ok", seconds=sample.seconds)
                counts["ok"] += 1
                if event.outcome == "redone":
                    counts["redone"] += 1
                    rec["redone"] = event.reason
                    if event.reason == UNRECORDED_SOURCE:
                        unrecorded += 1  # one line for all of them below: an old run folder has one per item
                    else:
                        ctx.log(f"  redo {adapter.name} {item.item_id}: {event.reason}")
        run.append_record(adapter.name, d.rank, rec)
        bar.update(1)
    bar.close()
    if unrecorded:
        ctx.log(f"  redo {adapter.name}: {unrecorded} sample(s) made by an earlier version record no sha256 of "
                "their source files, so whether the files changed cannot be told: read again")
    return counts


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False)


def current_samples(run: RunFolder, manifest: Manifest, name: str, key: dict[str, Any], random_weights: bool
                    ) -> tuple[dict[str, SampleRecord], dict[str, str]]:
    """item id -> valid sample of this model spec, and item id -> why the file on disk is unusable."""
    found: dict[str, SampleRecord] = {}
    damaged: dict[str, str] = {}
    for item in manifest.items:
        record, damage = current_sample(run, name, item, key, random_weights)
        if record is not None:
            found[item.item_id] = record
        elif damage:
            damaged[item.item_id] = damage
    return found, damaged


def merge_generation(run: RunFolder, manifest: Manifest, name: str, key: dict[str, Any], random_weights: bool
                     ) -> dict[str, Any]:
    """What the samples folder holds for this model spec now, item by item (valid samples, the latest error of
    each item that has none, items never attempted), whichever rank wrote them."""
    found, damaged = current_samples(run, manifest, name, key, random_weights)
    sids = {i.item_id: sample_id(i, key) for i in manifest.items}
    records, problems = run.read_records(name)
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("sample_id") == sids.get(rec["item_id"]):  # an earlier run's spec or item never counts
            latest[rec["item_id"]] = rec
    # samples the last generate pass found damaged and made anew (a later pass that reused them clears this)
    redone = [{"item_id": i, "message": r["redone"]} for i, r in latest.items() if r.get("redone")]
    errors = []
    for item in manifest.items:
        if item.item_id in found:
            continue
        rec = latest.get(item.item_id)
        if rec is not None and rec.get("status") == "error":
            errors.append({"item_id": item.item_id, "message": rec.get("message")})
        elif item.item_id in damaged:
            errors.append({"item_id": item.item_id, "message": f"damaged and not redone: {damaged[item.item_id]}"})
    attempted = set(latest) | set(found)
    times = [r.seconds for r in found.values() if r.seconds is not None]
    return {"n_ok": len(found), "n_error": len(errors), "errors": errors,
            "not_attempted": [i.item_id for i in manifest.items if i.item_id not in attempted],
            "samples": [str(run.record_audio(r)) for r in found.values()],
            "sample_ids": {i: r.sample_id for i, r in found.items()},
            "record_problems": problems, "redone": redone,
            "generation_seconds": median_ci(times).to_dict() if times else None,
            "beyond_full_scale": {i: r.peak_abs for i, r in found.items() if r.peak_abs > 1.0}}


# -- time -----------------------------------------------------------------------------------------------------


def timing_mode(adapter: Generator, cfg: EvalConfig) -> TimingMode:
    if cfg.timing in ("full", "extrapolate", "depth"):
        return cfg.timing  # type: ignore[return-value]
    return adapter.default_timing_mode


def time_budget(cfg: EvalConfig) -> float | None:
    if cfg.time_budget_s < 0:
        return None if cfg.device.startswith("cuda") else CPU_TIME_BUDGET_S
    return cfg.time_budget_s


def timing_key(adapter: Generator, key: dict[str, Any], items: tuple[Item, ...], cfg: EvalConfig) -> Key:
    """What a stored timing must match to be reused: the model, the protocol, the items, the machine."""
    import torch

    from samuel.provenance import cpu_name

    identity = {"model": key, "mode": timing_mode(adapter, cfg), "units": cfg.units, "budget_s": time_budget(cfg),
                "k": cfg.time_items, "device": cfg.device, "cpu": cpu_name(), "threads": torch.get_num_threads(),
                "torch": torch.__version__}
    content = Key("items", "", {"items": [i.key() for i in items]}).digest
    return Key("timing", content, identity)


def _check_timing(value: Any) -> None:
    """A stored timing is read only when every time in it can be one: finite and > 0 (an extrapolation made
    before negative growth was refused wrote negative times, and a record can be damaged)."""
    if value["status"] not in ("measured", "not measured") or not isinstance(value["items"], list):
        raise ValueError("not a timing record")
    if value["status"] != "measured":
        return
    if not value["items"]:
        raise ValueError("measured with no items")
    for item in value["items"]:
        seconds = item.get("seconds") if isinstance(item, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (math.isfinite(seconds)
                                                                                    and seconds > 0):
            name = item.get("item_id", "?") if isinstance(item, dict) else "?"
            raise ValueError(f"item {name} has a time of {seconds!r} s, which no run can take")
        done, total = item.get("units_done"), item.get("units_total")
        if isinstance(done, int) and isinstance(total, int) and done < total and not item.get("fit"):
            # a run that stopped early is extrapolated (its fit says how); this one counted units it never had:
            # SAMUeL's count once took the item's duration for a vocal window the song's end cut short
            raise ValueError(f"item {item.get('item_id', '?')} made {done} of the {total} {item.get('unit')} it "
                             "counts, yet was not extrapolated")


def time_pass(ctx: EvalContext, adapter: Generator, key: dict[str, Any], candidates: tuple[Item, ...]
              ) -> dict[str, Any]:
    """Time the model on up to --time-items of ``candidates`` (items that generated, when generate ran), or reuse
    this rank's stored timing when its key matches (--retime forces new timings). A model is timed whole."""
    cfg, run = ctx.cfg, ctx.run
    path = run.timing_path(adapter.name, ctx.dist.rank)
    cache: Cache[dict[str, Any]] = Cache(lambda k: path, JsonStore(_check_timing))
    tkey = timing_key(adapter, key, candidates, cfg)
    if cfg.retime:
        path.unlink(missing_ok=True)
    stored = cache.peek(tkey)
    busy = stored.get("setup", {}).get("busy") if isinstance(stored, dict) else None
    if busy:  # a busy machine's times stay in the run that took them, labelled, and are not carried into the next
        ctx.log(f"  time: the stored {path.name} was timed on a busy machine ({busy}); re-timed")
        path.unlink(missing_ok=True)

    def measure() -> dict[str, Any]:
        requests: list[GenerationRequest] = [i.request() for i in candidates]
        timing = time_model(adapter, requests, mode=timing_mode(adapter, cfg), k=cfg.units, n_items=cfg.time_items,
                            budget_s=time_budget(cfg), log=ctx.log)
        return timing.to_dict()

    data = cache.get(tkey, measure)
    event = cache.events[-1]
    if event.outcome == "reused":
        ctx.log(f"  time: reusing {path.name} (same model, protocol, items and machine; --retime re-times)")
    elif event.outcome == "redone":
        ctx.log(f"  time: the stored {path.name} was not usable ({event.reason}); re-timed")
    return {**data, "reused": event.outcome == "reused"}


def merge_timing(run: RunFolder, name: str, key: dict[str, Any], world: int) -> dict[str, Any] | None:
    """Every rank's timing of this model spec -> one record with the median and CI over all timed items. A file of
    another spec or of a rank beyond this run's world is never pooled."""
    parts = []
    for rank in range(world):
        path = run.timing_path(name, rank)
        try:
            entry = JsonStore(_check_timing).read(path, _stored_key(path))
        except (FileNotFoundError, BadEntry, ValueError):
            continue
        if _stored_key(path).identity.get("model") != key:
            continue
        parts.append((path, entry))
    if not parts:
        return None
    measured = [p for _, p in parts if p["status"] == "measured"]
    if not measured:
        return parts[0][1]
    merged = dict(measured[0])
    # a rank that could not measure (e.g. out of memory on its GPU) is named, not silently left out of the pool
    merged["unmeasured_ranks"] = [{"file": f.name, "reason": p.get("reason")} for f, p in parts
                                  if p["status"] != "measured"]
    merged["items"] = [i for p in measured for i in p["items"]]
    merged["load_s"] = max(p["load_s"] for p in measured)  # the slowest rank's; each rank loads its own copy
    merged["load_s_per_rank"] = [p["load_s"] for p in measured]
    merged["seconds"] = median_ci([i["seconds"] for i in merged["items"]]).to_dict()
    merged["rtf"] = median_ci([i["rtf"] for i in merged["items"]]).to_dict()
    merged["peak_memory_bytes"] = max(i["peak_memory_bytes"] for i in merged["items"])
    merged["ranks"] = len(parts)
    return merged


def _stored_key(path: Path) -> Key:
    """The key a timing entry says it was made for (merge checks the model spec itself)."""
    import json

    try:
        k = json.loads(path.read_text())["key"]
        return Key(k["kind"], k["content"], k["identity"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None


# -- the model passes -------------------------------------------------------------------------------------------


def run_model(ctx: EvalContext, spec: str, index: int) -> ModelRun:
    cfg, d = ctx.cfg, ctx.dist
    model_passes = [p for p in cfg.passes if p in MODEL_PASSES]
    if ctx.stages is not None and d.main:
        ctx.stages.start(f"model {index + 1}/{len(cfg.models)} {spec}: {', '.join(model_passes) or 'nothing'}")
    entry = ModelRun(spec=spec, name=spec)
    try:
        adapter = build_adapter(spec, cfg)
        status = adapter.status
    except AdapterError as err:
        entry.status, entry.reason = "not run", str(err)
        ctx.fail("model", spec, str(err))
        return entry
    entry.name = adapter.name
    key = model_key(adapter)
    entry.model_key = key
    entry.weights = Weights(status.kind, status.source, status.message, status.sha256, status.caveat)
    entry.describe = Describe.from_json(adapter.describe(), source=f"{adapter.name}: describe()")
    ctx.log(f"  {'!! ' if status.caveat else ''}{status.message}")
    mine = ctx.manifest.shard(d.rank, d.world)
    try:
        if status.kind == "files":  # a folder listing, every run (results.json is rewritten from the folder each time)
            # a file the manifest already rejected by name (`samuel-eval score`: unreadable, doubled) is not repeated
            rejected = {Path(r.path).resolve() for r in ctx.manifest.rejected}
            entry.unmatched_files = tuple(str(p) for p in adapter.unmatched_files(
                [item.request() for item in ctx.manifest.items]) if p.resolve() not in rejected)
            if entry.unmatched_files and d.main:
                shown = ", ".join(Path(p).name for p in entry.unmatched_files[:UNMATCHED_SHOWN])
                more = len(entry.unmatched_files) - UNMATCHED_SHOWN
                ctx.log(f"  {adapter.name}: {len(entry.unmatched_files)} file(s) match no item and are not used: "
                        f"{shown}{f' and {more} more (results.json)' if more > 0 else ''}")
        if "params" in cfg.passes:
            counts = adapter.parameter_counts()
            entry.params = Params(counts.total, dict(counts.by_component)) if counts else None
        generated_ok: set[str] | None = None
        if "generate" in cfg.passes:
            if status.quality_ok or cfg.generate_random:
                entry.generated = True
                c = generate_pass(ctx, adapter, key, mine)
                ctx.log(f"  generate: {c['ok']} written, {c['skipped']} already there, {c['redone']} redone, "
                        f"{c['error']} failed")
                found, _ = current_samples(ctx.run, Manifest(mine, "", 0), adapter.name, key, status.is_random)
                generated_ok = set(found)
            else:
                entry.generated = False
                entry.generation_note = ("random weights: no samples generated for scoring (efficiency only; "
                                         "--generate-random writes labelled samples anyway)")
        probe_wanted = "probe" in cfg.passes and cfg.probe > 0 and d.main and adapter.uses_vocal \
            and status.kind in ("pretrained", "random")
        if probe_wanted:
            need, have = adapter.memory_estimate_bytes(), available_bytes(adapter.device)
            why_depth = depth_reason(adapter, timing_mode(adapter, cfg), need, have) \
                if adapter.timing_depths() is not None else None  # --timing depth on a model without it: probed
            if why_depth is not None:
                # as the time pass: a model timed only in depth mode is never run whole here (it would not fit,
                # or would take hours); its cut copy is not the model, so it is not probed either
                probe_wanted = False
                ctx.log(f"  probe: not run: the whole model is only timed, in depth mode ({why_depth})")
            elif need > have:  # a model that cannot be loaded here is not loaded (it would take the run down)
                probe_wanted = False
                ctx.log(f"  probe: not run: does not fit: needs about {need / 2**30:.1f} GiB, {have / 2**30:.1f} "
                        f"GiB available on {adapter.device}")
        if "time" in cfg.passes:
            adapter.unload()  # the protocol times loading from scratch; the probe then runs on the timed model
            _release_memory()
            # items whose generation failed are not timed: their failure is an input problem, not a time
            candidates = tuple(i for i in mine if generated_ok is None or i.item_id in generated_ok) or mine
            timing = time_pass(ctx, adapter, key, candidates)
            _say_timing(ctx, timing)
            if timing["status"] != "measured":  # e.g. out of memory: the probe starts from a clean load
                adapter.unload()
                _release_memory()
        if probe_wanted:
            probed = probe_model(ctx.run, adapter, key, ctx.manifest, n=cfg.probe, make_sample=generate_new,
                                 own_store=sample_store(ctx.run, adapter.name, key, status.is_random),
                                 fatal=(ModelLoadError,), log=ctx.log)
            ctx.log(f"  {describe_probe(probed)}")
            for e in probed.errors:  # reported; the run goes on
                ctx.fail("probe", f"{adapter.name}/{e.item_id}", str(e.message))
        if cfg.sweep_steps and d.main and adapter.name in SWEEPABLE and status.kind in ("pretrained", "random"):
            adapter.unload()
            _release_memory()
            sweep_pass(ctx, spec, adapter, key)
    except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
        raise
    except Exception as err:  # a model that cannot load or run at all (bad checkpoint, unpickling refused)
        entry.status, entry.reason = "failed", f"{type(err).__name__}: {err}"
        ctx.fail("model", adapter.name, entry.reason)
    finally:
        adapter.unload()
        _release_memory()
    return entry


def sweep_path(run: RunFolder, model: str) -> Path:
    return run.root / "sweep" / f"{safe_name(model)}.json"


def sweep_pass(ctx: EvalContext, spec: str, adapter: Generator, key: dict[str, Any]) -> None:
    """The steps x precision sweep of one model on the first item (:mod:`bench.sweep`), kept in
    ``DIR/sweep/<model>.json``; a record made for the same model key, settings and item is reused, a damaged or
    different one is redone (and said so)."""
    import json

    from samuel.atomic import atomic_write

    cfg = ctx.cfg
    path = sweep_path(ctx.run, adapter.name)
    request = ctx.manifest.items[0].request()
    settings = {"steps": list(cfg.sweep_steps), "precisions": list(cfg.sweep_precisions)}
    item = {"item_id": request.item_id, "seed": request.seed, "duration_s": request.duration_s}
    if path.exists():
        try:
            old = read_sweep(path)
            if old["key"] == key and old["settings"] == settings and old["item"] == item:
                ctx.log(f"  sweep: {len(old['points'])} points already there ({path.name})")
                return
            ctx.log(f"  sweep: {path.name} was made for other settings or another model key: redone")
        except ValueError as err:
            ctx.log(f"  sweep: redone: {err}")
    if (need := adapter.memory_estimate_bytes()) > (have := available_bytes(adapter.device)):
        ctx.log(f"  sweep: not run: does not fit: needs about {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB")
        return
    knobs = SWEEPABLE[adapter.name]
    base = dict(cfg.model_options.get(adapter.name, {}))
    choice = WeightsChoice(cfg.weights, cfg.weights_paths.get(adapter.name))  # type: ignore[arg-type]

    def make(precision: str) -> Generator:
        return registry.create(spec, choice, device=cfg.device, **{**base, knobs.precision: knobs.values[precision]})

    precisions, not_swept = sweepable_precisions(cfg.sweep_precisions, str(adapter.device))
    for precision, why in not_swept.items():
        ctx.log(f"  sweep: {precision} not swept: {why}")
    try:
        points = run_sweep(make, request, steps=cfg.sweep_steps, precisions=precisions, log=ctx.log)
    except (AdapterError, RuntimeError, ValueError) as err:
        ctx.fail("sweep", adapter.name, f"{type(err).__name__}: {err}")
        return
    record = sweep_record(adapter.name, key, points, request=request, steps=cfg.sweep_steps,
                          precisions=cfg.sweep_precisions, weights=adapter.status.kind, not_swept=not_swept,
                          provenance={**device_facts(cfg.device), "versions": package_versions(RUN_PACKAGES),
                                      "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))
    ctx.log(f"  sweep: {len(points)} points written to {path.relative_to(ctx.run.root)}")


def _say_timing(ctx: EvalContext, timing: dict[str, Any]) -> None:
    if timing["status"] != "measured":
        ctx.log(f"  time: not measured: {timing['reason']}")
    elif (s := timing["seconds"]) is not None:
        low, high = s["ci_low"], s["ci_high"]
        ci = "no 95% CI (n < 6)" if low is None or math.isnan(low) else f"95% CI [{low:.2f}, {high:.2f}]"
        ctx.log(f"  time: median {s['value']:.2f} s per item ({ci}, n={s['n']}; {timing['label']}); "
                f"load {timing['load_s']:.1f} s")
    for skipped in timing.get("setup", {}).get("skipped_items", []):
        ctx.log(f"  time: skipped {skipped['item_id']}: {skipped['message']}")


# -- merge, score, report ---------------------------------------------------------------------------------------


def merge_results(ctx: EvalContext, entries: list[ModelRun], prov: dict[str, Any]) -> RunResults:
    """results.json: this run's models (a model whose passes did not all run this time keeps its stored params
    and timing when the stored entry is of the same model spec)."""
    cfg, run = ctx.cfg, ctx.run
    previous = _stored_models(run)
    models: dict[str, ModelResult] = {}
    for entry in entries:
        if entry.model_key is not None:
            random_weights = entry.weights is not None and entry.weights.is_random
            if "time" in cfg.passes:
                entry.timing = _merged_timing(ctx, entry.name, entry.model_key)
            if entry.generated is not False:
                merged = merge_generation(run, ctx.manifest, entry.name, entry.model_key, random_weights)
                if entry.unmatched_files:
                    merged["unmatched_files"] = list(entry.unmatched_files)
                gen = Generation.from_json(merged, source=f"{entry.name}: generation")
                if entry.generated or gen.n_ok or gen.n_error:
                    entry.generation = gen
                    entry.generated = True
                    for e in gen.errors:
                        ctx.fail("generate", f"{entry.name}/{e.item_id}", str(e.message))
            old = previous.get(entry.name)
            if old is not None and old.model_key == entry.model_key:
                if entry.params is None and "params" not in cfg.passes:
                    entry.params = old.params
                if entry.timing is None and "time" not in cfg.passes:
                    entry.timing = old.timing
                if entry.generated is None and old.generated is False:
                    entry.generated, entry.generation_note = False, old.generation_note
        models[entry.name] = entry.to_result()
    rejected = tuple(Rejected(r.path, r.problem) for r in ctx.manifest.rejected)
    manifest = ManifestSummary(str(run.manifest_path), ctx.manifest.source, len(ctx.manifest.items),
                               ctx.manifest.base_seed, rejected)
    results = RunResults(RESULTS_FORMAT, RunConfig.from_json(cfg.to_dict(), source="EvalConfig"),
                         Provenance.from_json(prov, source="provenance"), manifest, models, str(run.results_path))
    run.write_json(run.results_path, results.to_json())
    return results


def _merged_timing(ctx: EvalContext, name: str, key: dict[str, Any]) -> Timing | None:
    """merge_timing's record of this model, typed. Stored timings that do not read as one are a failure of the
    time pass (named), never written half-used."""
    merged = merge_timing(ctx.run, name, key, ctx.dist.world)
    try:
        return None if merged is None else Timing.from_json(merged, source=ctx.run.timing_path(name, 0).parent)
    except ValueError as err:
        ctx.fail("time", name, str(err))
        return None


def _stored_models(run: RunFolder) -> dict[str, ModelResult]:
    try:
        return dict(RunResults.read(run.results_path).models)
    except (FileNotFoundError, ValueError):
        return {}


def scorable_samples(run: RunFolder, results: RunResults, manifest: Manifest) -> dict[str, list[Any]]:
    """The current samples (ids of this manifest and this run's model specs), by model, in manifest order."""
    from bench.scoring.records import Sample

    out: dict[str, list[Any]] = {}
    for name, entry in results.models.items():
        key, gen = entry.model_key, entry.generation
        if not key or not gen:
            continue
        random_weights = entry.is_random
        found, _ = current_samples(run, manifest, name, key, random_weights)
        samples = [Sample(name, item_id, rec.sample_id, run.record_audio(rec), rec.weights, source_rate(rec))
                   for item_id, rec in found.items()]
        if samples:
            out[name] = samples
    return out


def source_rate(record: SampleRecord) -> int:
    """The lowest rate a sample's audio had: its stored rate, or the source file's when a file row resampled it
    (recorded in its info; read from the source file's header for a sample made before that was recorded)."""
    from baselines.files import file_rate

    source = record.info.get("source_rate")
    if not isinstance(source, int) and isinstance(record.info.get("source_file"), str):
        source = file_rate(record.info["source_file"])
    return min(record.sample_rate, source) if isinstance(source, int) and source > 0 else record.sample_rate


def score_pass(ctx: EvalContext, results: RunResults) -> dict[str, Any]:
    from bench.scoring import score

    samples = scorable_samples(ctx.run, results, ctx.manifest)
    scores = score(ctx.run, ctx.manifest, ctx.cfg.score_config(), samples, log=ctx.log, progress=ctx.cfg.progress)
    for model, entry in scores.get("models", {}).items():
        for e in entry.get("errors", []):
            ctx.fail("score", f"{model}/{e.get('item_id')}", f"{e.get('group')}: {e.get('message')}")
    return scores


# -- what earlier runs left ---------------------------------------------------------------------------------------


def stale_files(run: RunFolder) -> list[Path]:
    """Files under samples/, scores/ (both views), timing/ and probe/ that the current run (results.json's model
    specs and the stored manifest) does not use: samples of other specs or items, their clip records, timings of
    models no longer run, probe samples no current probe entry names, and temp files an interrupt left. They never
    reach a table; the report lists them and ``samuel-eval clean`` removes them. Raises ValueError naming the file
    when results.json, the manifest or probe.json cannot be read."""
    from bench.probe import current_probe_files

    results = RunResults.read(run.results_path)
    manifest = run.read_manifest()
    keep: set[Path] = set()
    models = results.models
    for name, entry in models.items():
        key = entry.model_key
        if not key:
            continue
        random_weights = entry.is_random
        for item in manifest.items:
            sid = sample_id(item, key)
            keep.update(run.sample_candidates(name, item.item_id, sid, random_weights))
            record = run.clip_record_path(name, item.item_id, sid)
            keep.update((record, record.parent / "mix" / record.name))  # the mix view's, beside it
    timings = sorted((run.root / "timing").glob("*.json"))
    current_models = {run.timing_path(name, 0).name.removesuffix("0.json") for name in models}  # "<model>.rank"
    keep.update(p for p in timings if p.name.removesuffix(".json").rstrip("0123456789") in current_models)
    mix_records = sorted(p for p in (run.root / "scores").glob("*/mix/*.json") if p.is_file())
    probe_keep, probe_files = current_probe_files(run, manifest, {n: m.model_key for n, m in models.items()})
    keep |= probe_keep
    candidates = run.sample_files() + run.clip_record_files() + mix_records + timings + probe_files
    temps = sorted(p for p in run.root.rglob(".*.tmp") if p.is_file())  # atomic_write's, left by a kill -9
    return sorted({p for p in candidates if p not in keep} | set(temps))


# -- the whole run ----------------------------------------------------------------------------------------------


def evaluate(cfg: EvalConfig, *, report: ReportPass | None = None, log: Callable[[str], None] | None = None,
             argv: list[str] | None = None, stages: Stages | None = None, manifest: Manifest | None = None
             ) -> EvalResult:
    """Run ``cfg.passes`` over ``cfg.out``; see the module docstring. Raises RunFolderError (including a folder
    locked by another run) and ManifestError for unusable requests, before any other work. ``manifest``: these
    items instead of the ones ``cfg`` asks for (``samuel-eval score`` builds them from its folders)."""
    d = init_dist()
    if (device := rank_device(cfg.device)) != cfg.device:
        cfg = replace(cfg, device=device)
        import torch

        torch.cuda.set_device(device)
    say = log or (lambda s: print(s, file=sys.stderr))
    if not d.main:
        say = lambda s: None  # noqa: E731 (only rank 0 talks)
    run = RunFolder(cfg.out)
    if stages is None and d.main:
        stages = Stages(len(cfg.models) + ("score" in cfg.passes) + ("report" in cfg.passes and report is not None),
                        say=say)
    if d.main:
        with run.lock():
            return _evaluate_main(cfg, run, d, say, argv, stages, report, manifest)
    barrier(d)  # rank 0 has written the manifest
    ctx = EvalContext(cfg, run, run.read_manifest(), d, say, None)
    entries = [run_model(ctx, spec, i) for i, spec in enumerate(cfg.models)]
    barrier(d)
    finish_dist(d)
    return EvalResult({"models": {e.name: e.to_dict() for e in entries}}, failures=ctx.failures)


def _evaluate_main(cfg: EvalConfig, run: RunFolder, d: Dist, say: Callable[[str], None], argv: list[str] | None,
                   stages: Stages | None, report: ReportPass | None, manifest: Manifest | None = None) -> EvalResult:
    try:
        manifest = prepare(cfg, run, say, manifest)
    finally:
        barrier(d)
    ctx = EvalContext(cfg, run, manifest, d, say, stages)
    for r in manifest.rejected:
        ctx.fail("prepare", r.path, r.problem)
    prov = provenance(cfg.device, cfg.seed, argv)
    entries = [run_model(ctx, spec, i) for i, spec in enumerate(cfg.models)]
    barrier(d)
    results = merge_results(ctx, entries, prov)
    say(f"results: {run.results_path}")
    finish_dist(d)  # the other ranks are done: they must not wait (and time out) while rank 0 scores
    result = EvalResult(results.to_json(), failures=ctx.failures)
    if "score" in cfg.passes:
        if stages is not None:
            stages.start("score (per-clip records are reused on resume)")
        result.scores = score_pass(ctx, results)
    if "report" in cfg.passes and report is not None:
        if stages is not None:
            stages.start("report")
        try:
            result.written = report(run, cfg, say)
        except Exception as err:  # the tables may be written; say what failed
            ctx.fail("report", str(run.report_path), f"{type(err).__name__}: {err}")
    if stages is not None:
        stages.finish()
    return result


def _release_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
