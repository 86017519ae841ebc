"""The embedded default input set: deterministic synthetic "sung" vocals with matching accompaniments.

Used when the user gives no ``--vocals DIR``. Item i is a pure function of (SET_VERSION, i):

- a key (12 tonics x major/minor) and a tempo (80-140 BPM, whole numbers);
- a four-chord progression in that key, one chord per bar (major I-V-vi-IV, minor i-VI-III-VII);
- the **vocal**: a melody on the scale, one note per beat with rests, whose strong beats sit on chord tones; each
  note is a harmonic tone (12 partials shaped by two vowel formants), with 5.5 Hz vibrato and a soft envelope;
  mono, 44.1 kHz;
- the **accompaniment** (stereo, 44.1 kHz): a bass on the chord root (beats 1 and 3), a sustained triad pad
  (spread left/right), a kick on 1 and 3, a noise snare on 2 and 4 and a hi-hat on every eighth.

So the true pairs agree in key, chords and beat: the ground truth that issue 5's adherence metrics need (key
and chroma agreement, beat alignment), known exactly from ``meta`` without any analysis. This is synthetic audio:
it says nothing about the quality of any model on real music, and every table built on it says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from samuel.hashing import file_sha256

SET_VERSION = 1
SAMPLE_RATE = 44_100
DEFAULT_DURATION_S = 2_097_152 / SAMPLE_RATE  # one SAMUeL chunk, 47.55 s
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
# Progressions as (scale degree of the root, chord quality) per bar.
MAJOR_PROGRESSION = ((0, "maj"), (4, "maj"), (5, "min"), (3, "maj"))  # I V vi IV
MINOR_PROGRESSION = ((0, "min"), (5, "maj"), (2, "maj"), (6, "maj"))  # i VI III VII
TRIADS = {"maj": (0, 4, 7), "min": (0, 3, 7)}
VOWEL_FORMANTS = ((730.0, 1090.0), (530.0, 1840.0), (270.0, 2290.0), (570.0, 840.0), (300.0, 870.0))


@dataclass(frozen=True)
class SyntheticItemMeta:
    """What is known exactly about one synthetic item."""

    item_id: str
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    bpm: int
    duration_s: float
    chords: list[list[int]]  # per bar: pitch classes of the triad
    beat_times_s: list[float]
    melody: list[tuple[float, float, int]]  # (onset s, length s, MIDI pitch) of each sung note

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    @property
    def prompt(self) -> str:
        return (f"pop accompaniment in {self.key_name} at {self.bpm} BPM with bass, warm synth pad and drums, "
                "instrumental")


def item_rng(index: int) -> np.random.Generator:
    return np.random.default_rng([SET_VERSION, index])


def item_meta(index: int, duration_s: float = DEFAULT_DURATION_S) -> SyntheticItemMeta:
    """The key, tempo, chords, beats and melody of item ``index`` (pure: no audio is made)."""
    rng = item_rng(index)
    tonic = int(rng.integers(12))
    mode = "major" if rng.random() < 0.5 else "minor"
    bpm = int(rng.integers(80, 141))
    beat = 60.0 / bpm
    scale = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    progression = MAJOR_PROGRESSION if mode == "major" else MINOR_PROGRESSION
    n_beats = int(duration_s / beat)
    chords = []
    for degree, quality in progression:
        root = (tonic + scale[degree]) % 12
        chords.append([(root + iv) % 12 for iv in TRIADS[quality]])
    melody: list[tuple[float, float, int]] = []
    for b in range(n_beats):
        if rng.random() < 0.15:  # a rest
            continue
        chord = chords[(b // 4) % 4]
        if b % 2 == 0:  # strong beat: a chord tone
            pc = chord[int(rng.integers(3))]
        else:  # weak beat: any scale tone
            pc = (tonic + scale[int(rng.integers(7))]) % 12
        midi = 60 + ((pc - 60) % 12)  # C4..B4
        if midi > 67 and rng.random() < 0.5:
            midi -= 12
        melody.append((b * beat, beat * float(rng.uniform(0.7, 0.95)), midi))
    return SyntheticItemMeta(f"syn-{index:03d}", tonic, mode, bpm, float(duration_s), chords,
                             [b * beat for b in range(n_beats)], melody)


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _envelope(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n, dtype=np.float64)
    a, r = min(attack, n), min(release, n)
    env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    if r:
        env[n - r:] *= np.linspace(1.0, 0.0, r)
    return env


def render_vocal(meta: SyntheticItemMeta, index: int) -> np.ndarray:
    """Mono (S,) float32 "sung" melody: harmonic tones with vibrato, shaped by vowel formants."""
    rng = np.random.default_rng([SET_VERSION, index, 1])
    n_total = round(meta.duration_s * SAMPLE_RATE)
    out = np.zeros(n_total)
    for onset, length, midi in meta.melody:
        start, n = round(onset * SAMPLE_RATE), round(length * SAMPLE_RATE)
        n = min(n, n_total - start)
        if n <= 0:
            continue
        t = np.arange(n) / SAMPLE_RATE
        vibrato = 0.3 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.25, 0, 1)  # semitones, fades in
        f0 = _hz(midi) * 2.0 ** (vibrato / 12)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        f1, f2 = VOWEL_FORMANTS[int(rng.integers(len(VOWEL_FORMANTS)))]
        tone = np.zeros(n)
        for k in range(1, 13):
            fk = k * _hz(midi)
            gain = (np.exp(-(((fk - f1) / 150.0) ** 2)) + 0.6 * np.exp(-(((fk - f2) / 200.0) ** 2)) + 0.05) / k
            tone += gain * np.sin(k * phase)
        out[start:start + n] += tone * _envelope(n, int(0.03 * SAMPLE_RATE), int(0.06 * SAMPLE_RATE))
    out += 1e-4 * rng.standard_normal(n_total)  # breath-level noise so silence is not digital zero
    return (0.3 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def render_accompaniment(meta: SyntheticItemMeta, index: int) -> np.ndarray:
    """Stereo (2, S) float32: bass, pad, kick, snare and hi-hat in the item's key and tempo."""
    rng = np.random.default_rng([SET_VERSION, index, 2])
    n_total = round(meta.duration_s * SAMPLE_RATE)
    left, right = np.zeros(n_total), np.zeros(n_total)
    beat = 60.0 / meta.bpm
    bar_n = round(4 * beat * SAMPLE_RATE)

    def add(signal: np.ndarray, start: int, pan: float) -> None:
        n = min(len(signal), n_total - start)
        if n > 0:
            left[start:start + n] += signal[:n] * np.sqrt(1 - pan)
            right[start:start + n] += signal[:n] * np.sqrt(pan)

    for bar, bar_start in enumerate(range(0, n_total, bar_n)):
        chord = meta.chords[bar % 4]
        t = np.arange(bar_n) / SAMPLE_RATE
        pad = sum(np.sin(2 * np.pi * _hz(48 + pc) * t) + 0.3 * np.sin(4 * np.pi * _hz(48 + pc) * t) for pc in chord)
        env = _envelope(bar_n, int(0.2 * SAMPLE_RATE), int(0.2 * SAMPLE_RATE))
        add(0.10 * pad * env, bar_start, 0.3)
        add(0.08 * pad * env, bar_start, 0.7)
        for half in (0, 2):  # bass on beats 1 and 3
            n = round(1.8 * beat * SAMPLE_RATE)
            tb = np.arange(n) / SAMPLE_RATE
            f = _hz(36 + chord[0])
            bass = (np.sin(2 * np.pi * f * tb) + 0.4 * np.sin(4 * np.pi * f * tb)) * np.exp(-tb * 1.5)
            add(0.25 * bass, bar_start + round(half * beat * SAMPLE_RATE), 0.5)
    for b, bt in enumerate(meta.beat_times_s):
        start = round(bt * SAMPLE_RATE)
        n = round(0.25 * SAMPLE_RATE)
        td = np.arange(n) / SAMPLE_RATE
        if b % 2 == 0:  # kick
            add(0.5 * np.sin(2 * np.pi * (50 + 60 * np.exp(-td * 30)) * td) * np.exp(-td * 12), start, 0.5)
        else:  # snare
            add(0.2 * rng.standard_normal(n) * np.exp(-td * 20), start, 0.5)
        for off in (0.0, 0.5):  # hi-hat on eighths
            m = round(0.05 * SAMPLE_RATE)
            hat = np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / SAMPLE_RATE * 80)
            add(0.04 * hat, start + round(off * beat * SAMPLE_RATE), 0.65)
    stereo = np.stack([left, right])
    return (0.8 * stereo / max(np.abs(stereo).max(), 1e-9)).astype(np.float32)


MAX_SHIFT_BEATS = 16  # four bars: one turn of the chord cycle


def render_accompaniment_variants(meta: SyntheticItemMeta, index: int, shifts_beats: tuple[float, ...] = (0.0,),
                                  tempo_scale: float = 1.0, transpose: int = 0) -> np.ndarray:
    """(V, 2, S) float32: the item's accompaniment late or early, at another tempo or in another key.

    Corrupted pairs for validating the adherence metrics (docs/notes-adherence.md). Each variant is re-rendered as
    continuous music, so nothing but its timing or pitch gives it away: one piece is rendered with whole bars of
    the same progression before and after the item's span (the chord cycle rotated so that the item's first bar
    keeps its chord), and each variant is cut from it at its shifted start: no silent gap, no hard cut.

    Args:
        meta, index: the item, as for :func:`render_accompaniment`.
        shifts_beats: one variant per shift: > 0 plays late (at time t the accompaniment plays what belongs at
            t - shift), < 0 early; in beats of the variant's tempo (0.25 a sixteenth, 4 a bar).
        tempo_scale: the variants' tempo over the item's (1.25: 25% faster), starting together on beat 1.
        transpose: semitones added to every chord (and so to the bass and pad).

    Raises:
        ValueError: for a shift beyond ``MAX_SHIFT_BEATS`` or a tempo scale that is not positive.
    """
    if not shifts_beats or max(abs(s) for s in shifts_beats) > MAX_SHIFT_BEATS:
        raise ValueError(f"shifts_beats must be 1+ shifts within +-{MAX_SHIFT_BEATS}, got {shifts_beats}")
    if not tempo_scale > 0:
        raise ValueError(f"tempo_scale must be positive, got {tempo_scale}")
    bpm = meta.bpm * tempo_scale
    beat = 60.0 / bpm
    roll_bars = max(1, math.ceil(max(abs(s) for s in shifts_beats) / 4))
    span_s = meta.duration_s + (2 * roll_bars * 4 + 1) * beat  # a beat spare for the rounding of bar starts
    chords = [[(pc + transpose) % 12 for pc in meta.chords[(bar - roll_bars) % 4]] for bar in range(4)]
    extended = replace(meta, bpm=bpm, duration_s=span_s, chords=chords,
                       beat_times_s=[b * beat for b in range(int(span_s / beat))])
    piece = render_accompaniment(extended, index)
    bar_n = round(4 * beat * SAMPLE_RATE)  # render_accompaniment lays bars at multiples of this
    n = round(meta.duration_s * SAMPLE_RATE)
    starts = [roll_bars * bar_n - round(s * beat * SAMPLE_RATE) for s in shifts_beats]
    return np.stack([piece[:, start:start + n] for start in starts])


def render_noise(meta: SyntheticItemMeta, index: int) -> np.ndarray:
    """Stereo (2, S) float32 white noise as long as the item (seeded by the item): an accompaniment with no key,
    chords or beat, which every adherence metric must score at or below chance."""
    rng = np.random.default_rng([SET_VERSION, index, 3])
    return (0.2 * rng.standard_normal((2, round(meta.duration_s * SAMPLE_RATE)))).astype(np.float32)


PARALLEL_MIN_ITEMS = 4  # below this, worker start-up (about a second each) costs more than it saves


def write_synthetic_set(folder: Path, n: int, duration_s: float = DEFAULT_DURATION_S,
                        workers: int | None = None) -> list[SyntheticItemMeta]:
    """Write items 0..n-1 as ``vocals/<id>.flac``, ``accompaniment/<id>.flac`` and ``meta/<id>.json``.

    Items already written for the same set version and duration are kept (the set is deterministic), so a larger
    n later only adds the new ones. Files are written atomically. Missing items are rendered in ``workers``
    processes (default: one per usable core; about 1 s per 47.55 s item each): every item is a pure function of
    its index, so the files are the same bytes whatever the worker count.
    """
    metas = [item_meta(i, duration_s) for i in range(n)]
    todo = [i for i, meta in enumerate(metas) if not _intact(*_paths_and_record(folder, meta))]
    from samuel.provenance import usable_cores

    count = min(len(todo), workers if workers is not None else usable_cores())
    if count <= 1 or len(todo) < PARALLEL_MIN_ITEMS:
        for i in todo:
            _write_item(folder, i, duration_s)
        return metas
    from samuel.processes import spawn_pool

    with spawn_pool(count) as pool:
        for _ in pool.map(_write_item, [folder] * len(todo), todo, [duration_s] * len(todo)):
            pass
    return metas


def _paths_and_record(folder: Path, meta: SyntheticItemMeta) -> tuple[Path, dict[str, object], dict[str, Path]]:
    record = {"set_version": SET_VERSION, **asdict(meta), "key": meta.key_name, "prompt": meta.prompt}
    return (folder / "meta" / f"{meta.item_id}.json", record,
            {"vocal": folder / "vocals" / f"{meta.item_id}.flac",
             "accompaniment": folder / "accompaniment" / f"{meta.item_id}.flac"})


def _write_item(folder: Path, index: int, duration_s: float) -> None:
    """Render and write item ``index``; its meta record (with the files' checksums, so that a damaged file is found
    and rewritten next time) is written last."""
    from samuel.atomic import atomic_write
    from samuel.audio import write_audio

    meta = item_meta(index, duration_s)
    meta_path, record, files = _paths_and_record(folder, meta)
    for path in (meta_path, *files.values()):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(files["vocal"], render_vocal(meta, index)[None, :], SAMPLE_RATE, subtype="PCM_16")
    write_audio(files["accompaniment"], render_accompaniment(meta, index), SAMPLE_RATE, subtype="PCM_16")
    full = {**record, "sha256": {name: file_sha256(path) for name, path in files.items()}}
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(full, indent=1) + "\n"))


def _intact(meta_path: Path, record: dict[str, object], files: dict[str, Path]) -> bool:
    """Whether an item already on disk is this item, whole: its meta record matches and each file has the
    checksum recorded when it was written (a truncated or garbled input is rewritten, never reused)."""
    try:
        stored = json.loads(meta_path.read_text())
        sums = stored.pop("sha256")
        if stored != json.loads(json.dumps(record)):
            return False
        return all(file_sha256(path) == sums[name] for name, path in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
