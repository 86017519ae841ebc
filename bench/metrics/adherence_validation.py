"""Validation of the adherence metrics on the embedded synthetic set: true pairs against corrupted ones.

Each item's vocal is scored against its true accompaniment and against re-rendered corruptions of it (late or
early by a sixteenth, an eighth, a beat and a bar; 1.25x the tempo; +1 semitone and a tritone), white noise and
silence; shuffled pairs (every vocal with another item's true accompaniment, a derangement) give the chance
anchor. ``EXPECTED_WINS`` says which corruptions each metric must lose to the true pair (on at least
``MIN_WIN_SHARE`` of items); ``AT_CHANCE`` conditions must score within the shuffled anchor's 95% CI or below it.
tests/test_adherence_validation.py asserts both; docs/notes-adherence.md holds the table this module prints:

    python -m bench.metrics.adherence_validation [--items 12] [--duration 8]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from bench import synthetic as syn
from bench.bootstrap import bootstrap_mean_ci
from bench.metrics import adherence as ad
from bench.metrics import rhythm as rh

METRICS = ("chroma_agreement", "key_agreement", "onset_alignment", "rhythm_agreement")
SHIFTS_BEATS = {"16th": 0.25, "8th": 0.5, "beat": 1.0, "bar": 4.0}
SHIFTS = tuple(f"{name} {side}" for name in SHIFTS_BEATS for side in ("late", "early"))
TEMPO = "tempo x1.25"
TRANSPOSITIONS = {"+1 semitone": 1, "tritone": 6}
AT_CHANCE = ("white noise", "silence")
CONDITIONS = ("true", *SHIFTS, TEMPO, *TRANSPOSITIONS, *AT_CHANCE)
EXPECTED_WINS = {
    "chroma_agreement": tuple(TRANSPOSITIONS),
    "key_agreement": tuple(TRANSPOSITIONS),
    # a grid-coincidence diagnostic: a shift by a whole eighth lands on the hi-hat grid again, so it is expected
    # to catch only what leaves the grid (docs/notes-adherence.md)
    "onset_alignment": ("16th late", "16th early", TEMPO),
    "rhythm_agreement": (*SHIFTS, TEMPO),
}
MIN_WIN_SHARE = 0.8
MISSED = "(missed)"  # marks a cell whose expected order does not hold
N_ITEMS = 12
DURATION_S = 8.0


def condition_accompaniments(meta: syn.SyntheticItemMeta, index: int) -> dict[str, np.ndarray]:
    """Every condition's (2, S) accompaniment for one item, keyed by ``CONDITIONS``."""
    true = syn.render_accompaniment(meta, index)
    shifts = [SHIFTS_BEATS[name.split()[0]] * (1 if name.endswith("late") else -1) for name in SHIFTS]
    shifted = syn.render_accompaniment_variants(meta, index, tuple(shifts))
    out = {"true": true, **dict(zip(SHIFTS, shifted, strict=True))}
    out[TEMPO] = syn.render_accompaniment_variants(meta, index, tempo_scale=1.25)[0]
    for name, semitones in TRANSPOSITIONS.items():
        out[name] = syn.render_accompaniment_variants(meta, index, transpose=semitones)[0]
    out["white noise"] = syn.render_noise(meta, index)
    out["silence"] = np.zeros_like(true)
    return out


@dataclass(frozen=True)
class ValidationScores:
    """Per-item scores of every metric under every condition, and of the shuffled pairs."""

    scores: dict[str, dict[str, np.ndarray]]  # metric -> condition -> (N,)
    parts: dict[str, dict[str, np.ndarray]]  # rhythm part (RHYTHM_PARTS) -> condition -> (N,)
    shuffled: dict[str, np.ndarray]  # metric -> (N,)
    permutation: np.ndarray  # (N,) the derangement of the shuffled pairs
    duration_s: float


def score_features(vocals: list[ad.VocalFeatures], accompaniments: list[dict[str, ad.AccompanimentFeatures]],
                   duration_s: float, seed: int = 0) -> ValidationScores:
    """Pure scoring: features in (each vocal's once, each condition's accompaniment), scores out."""
    n = len(vocals)
    per_pair = {c: [ad.score_pair(v, a[c]).to_dict() for v, a in zip(vocals, accompaniments, strict=True)]
                for c in CONDITIONS}
    perm = ad.derangement(n, seed)
    shuffled = [ad.pair_scores(vocals[i], accompaniments[j]["true"], same_item=False).to_dict()
                for i, j in enumerate(perm)]
    scores = {m: {c: np.array([s[m] for s in per_pair[c]], dtype=np.float64) for c in CONDITIONS} for m in METRICS}
    parts = {name: {c: np.array([fn(v, a[c]) for v, a in zip(vocals, accompaniments, strict=True)])
                    for c in CONDITIONS} for name, fn in RHYTHM_PARTS.items()}
    return ValidationScores(scores, parts, {m: np.array([s[m] for s in shuffled], dtype=np.float64) for m in METRICS},
                            perm, duration_s)


def _rhythm_parts(vocal: ad.VocalFeatures, accompaniment: ad.AccompanimentFeatures) -> rh.RhythmAgreement:
    return rh.rhythm_agreement(vocal.pitch_class, vocal.weight, vocal.onset_envelope, accompaniment.chroma,
                               accompaniment.onset_envelope, edge_frames=ad.EDGE_FRAMES)


# rhythm agreement's two parts, and the part we dropped (docs/notes-adherence.md)
RHYTHM_PARTS = {
    "r_O (onsets)": lambda v, a: _rhythm_parts(v, a).onset,
    "r_P (pitch-class onsets)": lambda v, a: _rhythm_parts(v, a).pitch_onset,
    "r_H (dropped)": lambda v, a: rh.harmonic_timing(v.pitch_class, v.weight, a.chroma, ad.EDGE_FRAMES),
}


def item_features(index: int, duration_s: float = DURATION_S
                  ) -> tuple[ad.VocalFeatures, dict[str, ad.AccompanimentFeatures]]:
    """One item's vocal features and every condition's accompaniment features (pYIN once)."""
    meta = syn.item_meta(index, duration_s)
    vocal = ad.vocal_features(syn.render_vocal(meta, index), syn.SAMPLE_RATE)
    return vocal, {c: ad.accompaniment_features(a, syn.SAMPLE_RATE)
                   for c, a in condition_accompaniments(meta, index).items()}


def validation_scores(n_items: int = N_ITEMS, duration_s: float = DURATION_S, seed: int = 0,
                      workers: int = 1) -> ValidationScores:
    """Render items 0..n_items-1 of the synthetic set, every condition, and score them.

    ``workers`` > 1 computes items' features in that many processes (the results do not depend on it). They are
    spawned, not forked: a child forked after the parent has run numba or torch threads can crash in librosa's
    numba kernels (a segfault in ``peak_pick`` was seen in CI).
    """
    indices = range(n_items)
    if workers > 1:
        from samuel.processes import spawn_pool

        with spawn_pool(workers) as pool:
            features = list(pool.map(item_features, indices, [duration_s] * n_items))
    else:
        features = [item_features(i, duration_s) for i in indices]
    return score_features([f[0] for f in features], [f[1] for f in features], duration_s, seed)


@dataclass(frozen=True)
class Row:
    """One cell group of the table: a metric under a condition, against the true pairs and the chance anchor."""

    metric: str
    condition: str
    mean: float
    true_wins: float  # share of items where the true pair scores higher
    expected: str  # "true wins" | "at chance" | "" (no expectation)
    passed: bool | None  # None when nothing is expected


def validation_rows(result: ValidationScores) -> list[Row]:
    """Every (metric, condition) with its mean, the share of items the true pair wins and whether it meets its
    expectation (``EXPECTED_WINS``, ``AT_CHANCE``)."""
    rows = []
    for m in METRICS:
        true = result.scores[m]["true"]
        anchor = shuffled_anchor(result, m)
        for c in CONDITIONS[1:]:
            values = result.scores[m][c]
            wins = float(np.mean(true > values))
            if c in EXPECTED_WINS[m]:
                expected, passed = "true wins", wins >= MIN_WIN_SHARE
            elif c in AT_CHANCE:
                expected, passed = "at chance", bool(np.nanmean(values) <= anchor.high)
            else:
                expected, passed = "", None
            rows.append(Row(m, c, float(np.nanmean(values)), wins, expected, passed))
    return rows


def shuffled_anchor(result: ValidationScores, metric: str):
    """The shuffled pairs' mean with its percentile-bootstrap 95% CI (bench.bootstrap.bootstrap_mean_ci)."""
    values = result.shuffled[metric]
    return bootstrap_mean_ci(values[np.isfinite(values)], seed=0)


def render_markdown(result: ValidationScores) -> str:
    """The validation table as Markdown: condition rows, metric columns, "mean (share of true wins)"."""
    rows = {(r.metric, r.condition): r for r in validation_rows(result)}
    n = result.permutation.size
    lines = [f"{n} items x {result.duration_s:g} s of the synthetic set. Each cell: mean (share of items where the "
             "true pair scores higher). **Bold**: an expected order that holds (the true pair wins on >= 80% of "
             "items, or the mean is at or below the shuffled anchor's 95% CI); one that failed would end in "
             f"'{MISSED}'.", "",
             "| condition | " + " | ".join(METRICS) + " |", "|" + " --- |" * (len(METRICS) + 1),
             "| true pairs | " + " | ".join(f"{np.nanmean(result.scores[m]['true']):.3f}" for m in METRICS) + " |"]
    for c in CONDITIONS[1:]:
        cells = []
        for m in METRICS:
            r = rows[(m, c)]
            cell = f"{r.mean:.3f} ({r.true_wins:.2f})"
            if r.passed is not None:
                cell = f"**{cell}**" if r.passed else f"{cell} {MISSED}"
            cells.append(cell)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    anchors = [shuffled_anchor(result, m) for m in METRICS]
    lines.append("| shuffled pairs (95% CI) | "
                 + " | ".join(f"{a.value:.3f} [{a.low:.3f}, {a.high:.3f}]" for a in anchors) + " |")
    return "\n".join(lines) + "\n"


def render_parts_markdown(result: ValidationScores) -> str:
    """Rhythm agreement's parts under every condition: mean (share of items where the true pair scores higher)."""
    names = list(result.parts)
    lines = ["| condition | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1),
             "| true pairs | " + " | ".join(f"{np.mean(result.parts[p]['true']):.3f}" for p in names) + " |"]
    for c in CONDITIONS[1:]:
        cells = [f"{np.mean(result.parts[p][c]):.3f} ({np.mean(result.parts[p]['true'] > result.parts[p][c]):.2f})"
                 for p in names]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=N_ITEMS)
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds per item")
    parser.add_argument("--workers", type=int, default=2, help="processes for the features")
    args = parser.parse_args(argv)
    result = validation_scores(args.items, args.duration, workers=args.workers)
    print(render_markdown(result))
    print(render_parts_markdown(result), end="")


if __name__ == "__main__":
    main()
