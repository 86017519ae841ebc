"""The score pass: per-clip metrics, set metrics and statistics over the samples the generate pass wrote.

Layout under the run folder (all writes atomic; a rerun computes only what is missing, so it resumes):

    DIR/scores/<model>/<item>__<sid>.json   one clip's metric groups, each with the identity that made it
    DIR/cache/embeddings/                   content-addressed float32 embeddings (bench.metrics.embeddings)
    DIR/scores.json                         per model: means with bootstrap CIs, FAD family, adherence anchors,
                                            paired differences, errors; with the scorers' provenance

A clip's record is reused only when the sample's sha256 and the metric group's identity (scorer, checkpoint
digest, preprocessing) both match, so a regenerated sample or another checkpoint is never served old numbers.
One clip that fails is recorded with its error and the pass goes on.

Which samples are scored: those of pretrained models and of file sources (reference, outputs:NAME=DIR).
Samples that random-weight models wrote with --generate-random are scored only with --score-random, and every
number from them carries the RANDOM label; Table I never shows them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.bootstrap import bootstrap_mean_ci, paired_bootstrap_diff
from bench.manifest import Manifest, safe_name

SCORES_NAME = "scores.json"
SCORES_FORMAT = "samuel-bench-scores/1"
RECORD_VERSION = 1
METRIC_GROUPS = ("signal", "adherence", "aesthetics", "fad")
REFERENCE_MODEL = "reference"


@dataclass(frozen=True)
class ScoreConfig:
    """What the score pass computes; it travels into scores.json."""

    groups: tuple[str, ...] = METRIC_GROUPS
    embedders: tuple[str, ...] = ("vggish",)
    embedder_weights: dict[str, str] = field(default_factory=dict)  # embedder -> local path or hub id
    aesthetics_weights: str | None = None  # local path or hub id; default facebook/audiobox-aesthetics
    fad_reference: Path | None = None  # audio folder or statistics .npz; default: the items' true accompaniments
    score_random: bool = False
    resamples: int = 1000
    seed: int = 0
    baseline: str = "samuel"  # paired differences: every model minus this one
    device: str = "cpu"
    cache: Path | None = None  # embedding cache; default DIR/cache/embeddings

    def to_dict(self) -> dict[str, Any]:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        d["groups"], d["embedders"] = list(self.groups), list(self.embedders)
        return d


@dataclass(frozen=True)
class Sample:
    """One generated (or copied) clip, as the generate pass described it in its sidecar JSON."""

    model: str
    item_id: str
    sample_id: str
    audio: Path
    weights: str  # pretrained | files | random
    vocal: Path

    @property
    def random(self) -> bool:
        return self.weights == "random"


def find_samples(out: Path) -> dict[str, list[Sample]]:
    """Every finished sample under DIR/samples (audio and sidecar both present), by model, in item order."""
    found: dict[str, list[Sample]] = {}
    for meta_path in sorted((out / "samples").glob("*/*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            audio = meta_path.parent / meta["path"]
            if not audio.is_file():
                continue
            found.setdefault(meta["model"], []).append(Sample(
                meta["model"], meta["item_id"], meta["sample_id"], audio, meta.get("weights", "pretrained"),
                Path(meta["vocal"])))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue  # a torn sidecar: the generate pass redoes that item on resume
    for samples in found.values():
        samples.sort(key=lambda s: s.item_id)
    return found


# -- per-clip records -------------------------------------------------------------------------------------------


class ClipRecords:
    """DIR/scores/<model>/<item>__<sid>.json: read, check against the sample's hash, update one group at a time."""

    def __init__(self, out: Path) -> None:
        self.folder = out / "scores"

    def path(self, sample: Sample) -> Path:
        return self.folder / safe_name(sample.model) / f"{sample.item_id}__{sample.sample_id}.json"

    def read(self, sample: Sample, sha256: str) -> dict[str, Any]:
        path = self.path(sample)
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
        if record.get("sample_sha256") != sha256 or record.get("version") != RECORD_VERSION:
            record = {"version": RECORD_VERSION, "model": sample.model, "item_id": sample.item_id,
                      "sample_id": sample.sample_id, "sample_sha256": sha256, "weights": sample.weights,
                      "groups": {}}
        return record

    def write(self, sample: Sample, record: dict[str, Any]) -> None:
        from samuel.atomic import atomic_write

        text = json.dumps(record, indent=1, default=_json_default)
        atomic_write(self.path(sample), lambda tmp: Path(tmp).write_text(text))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _group_current(record: dict[str, Any], group: str, identity: dict[str, Any]) -> bool:
    entry = record["groups"].get(group)
    return bool(entry) and entry.get("identity") == identity and "values" in entry


def _set_group(record: dict[str, Any], group: str, identity: dict[str, Any], values: dict[str, float] | None,
               error: str | None = None) -> None:
    record["groups"][group] = {"identity": identity, **({"values": values} if error is None else {"error": error})}


# -- the pass ---------------------------------------------------------------------------------------------------


@dataclass
class ScoreContext:
    out: Path
    cfg: ScoreConfig
    manifest: Manifest
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    scorers: dict[str, Any] = field(default_factory=dict)  # group -> provenance of the scorer used (JSON)
    state: dict[str, Any] = field(default_factory=dict)  # built scorers and per-pass caches (not written)
    _audio_path: Path | None = None
    _audio_samples: np.ndarray | None = None

    def audio(self, path: Path) -> np.ndarray:
        """(2, S) float32 at 44.1 kHz. Only the last file is kept: a clip's groups read it in turn, and 100
        clips of 47.55 s would hold 1.6 GB (the vocals are kept as features instead, see bench.scorers)."""
        from samuel.audio import load_audio

        if self._audio_path != path:
            self._audio_path, self._audio_samples = path, load_audio(path, min_seconds=0.1).samples
        return self._audio_samples


def score(out: Path, manifest: Manifest, cfg: ScoreConfig, log: Callable[[str], None] | None = None,
          weights_by_model: dict[str, str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Score every sample under ``out`` and write DIR/scores.json; returns its content."""
    say = log or (lambda s: print(s, file=sys.stderr))
    ctx = ScoreContext(out, cfg, manifest, say)
    samples = find_samples(out)
    scored: dict[str, list[Sample]] = {}
    for model, group in samples.items():
        if any(s.random for s in group) and not cfg.score_random:
            ctx.notes.append(f"{model}: samples from RANDOM weights are not scored (--score-random scores them, "
                             "labelled)")
            continue
        scored[model] = group
    if not scored:
        say("score: no scorable samples (models with random weights write none unless --generate-random)")
    records = ClipRecords(out)
    per_clip: dict[str, dict[str, dict[str, dict[str, float]]]] = {}  # model -> item -> group -> values
    errors: dict[str, list[dict[str, str]]] = {m: [] for m in scored}
    from bench import scorers

    for model, group in scored.items():
        say(f"score {model}: {len(group)} clips")
        per_clip[model] = scorers.score_clips(ctx, records, group, errors[model], progress)
    fad = scorers.score_sets(ctx, scored) if "fad" in cfg.groups and scored else {}
    summary = summarise(per_clip, scored, cfg)
    anchors = scorers.adherence_anchors(ctx, summary) if "adherence" in cfg.groups else {}
    models: dict[str, Any] = {}
    for model, group in scored.items():
        random = any(s.random for s in group)
        models[model] = {"n_samples": len(group), "weights": "random" if random else group[0].weights,
                         "label": "RANDOM weights: plumbing only, not a quality result" if random else None,
                         "per_clip": summary[model]["per_clip"], "paired": summary[model]["paired"],
                         "sets": fad.get(model, {}), "errors": errors[model]}
    data = {"format": SCORES_FORMAT, "config": cfg.to_dict(), "provenance": score_provenance(cfg),
            "scorers": ctx.scorers, "anchors": anchors,
            "models": models, "notes": ctx.notes, "n_items": len(manifest.items)}
    from samuel.atomic import atomic_write

    text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
    atomic_write(out / SCORES_NAME, lambda tmp: Path(tmp).write_text(text))
    say(f"scores: {out / SCORES_NAME}")
    return data


def score_provenance(cfg: ScoreConfig) -> dict[str, Any]:
    """Versions of what scores, git state, device and seed (the run's own provenance is in results.json)."""
    import platform
    import time
    from importlib.metadata import PackageNotFoundError, version

    from bench.run import cpu_name, git_state

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("samuel-bench", "torch", "numpy", "scipy", "librosa", "transformers", "audiobox-aesthetics",
                 "pyloudnorm", "soxr"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return {"versions": versions, "git": git_state(), "device": {"requested": cfg.device, "cpu": cpu_name()},
            "seed": cfg.seed, "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def metric_values(per_item: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """item -> group -> values  =>  'group.metric' -> item -> value (finite values only)."""
    out: dict[str, dict[str, float]] = {}
    for item, groups in per_item.items():
        for group, values in groups.items():
            for name, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.setdefault(f"{group}.{name}", {})[item] = float(v)
    return out


def summarise(per_clip: dict[str, dict[str, dict[str, dict[str, float]]]], scored: dict[str, list[Sample]],
              cfg: ScoreConfig) -> dict[str, dict[str, Any]]:
    """Per model and metric: the mean with a seeded bootstrap CI over items; paired differences to the baseline
    model on the items both have."""
    values = {m: metric_values(per_clip.get(m, {})) for m in scored}
    out: dict[str, dict[str, Any]] = {}
    for model in scored:
        entry: dict[str, Any] = {"per_clip": {}, "paired": {}}
        for metric, by_item in sorted(values[model].items()):
            est = bootstrap_mean_ci(list(by_item.values()), n_resamples=cfg.resamples, seed=cfg.seed)
            entry["per_clip"][metric] = {**est.to_dict(), "n_nonfinite": len(scored[model]) - est.n}
        base = values.get(cfg.baseline)
        if base is not None and model != cfg.baseline:
            for metric, by_item in sorted(values[model].items()):
                common = sorted(set(by_item) & set(base.get(metric, {})))
                if len(common) < 2:
                    continue
                diff, p = paired_bootstrap_diff([by_item[i] for i in common], [base[metric][i] for i in common],
                                                n_resamples=cfg.resamples, seed=cfg.seed)
                entry["paired"][metric] = {**diff.to_dict(), "p_value": p, "versus": cfg.baseline}
        out[model] = entry
    return out


def read_clip_values(out: Path) -> list[dict[str, Any]]:
    """Every finite per-clip value under DIR/scores as tidy rows (one per clip and metric), for figures and
    outlier lists: ``model, item_id, sample_id, weights, metric ('group.name'), value``. Reads only; a torn or
    foreign record is skipped (the score pass rewrites it on resume)."""
    rows: list[dict[str, Any]] = []
    for path in sorted((out / "scores").glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
            groups = record["groups"]
            key = (record["model"], record["item_id"], record["sample_id"], record.get("weights", "pretrained"))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue
        for group, entry in sorted(groups.items()):
            for name, v in sorted((entry.get("values") or {}).items()):
                if isinstance(v, (int, float)) and math.isfinite(v):
                    rows.append(dict(zip(("model", "item_id", "sample_id", "weights"), key, strict=True),
                                     metric=f"{group}.{name}", value=float(v)))
    return rows


def read_scores(out: Path) -> dict[str, Any] | None:
    path = out / SCORES_NAME
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("format") != SCORES_FORMAT:
        raise ValueError(f"{path}: not a samuel-bench scores file (format {data.get('format')!r})")
    return data
