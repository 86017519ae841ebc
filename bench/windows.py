"""Where in a whole song an item's seconds lie: ``--window auto|start|SECONDS`` and ``--windows-per-song K``.

    start       every window from the file's start (0 s): the harness's behaviour before windows existed
    SECONDS     from SECONDS
    auto        the K windows with the most vocal activity (songs open with instrumental intros)

With K > 1, ``start`` and ``SECONDS`` take K consecutive windows (start, start + D, ...), as many as lie wholly in
the song; ``auto`` takes them by the rule below. A song shorter than the item's duration D gives one window from
0 s (cut at the file's end), and the window's note says so.

**Vocal activity (the auto rule).** The vocal is cut into non-overlapping frames of ``FRAME_S`` = 0.1 s. A frame's
level is its RMS in dB, the power averaged over channels (so two out-of-phase channels do not cancel):

    L_f = 10 log10( mean_{n in f, c} x_c[n]^2 )

A frame is *active* when it passes two gates, in the manner of ITU-R BS.1770-4's loudness gating (an absolute gate,
then a relative one), here relative to the loudest frame of the file:

    active_f = [ L_f > max( max_g L_g - ACTIVE_RANGE_DB, ABSOLUTE_FLOOR_DBFS ) ],   30 dB and -60 dBFS

A window of W = round(D / FRAME_S) frames starting at frame s has activity A(s) = (1/W) sum_{f=s}^{s+W-1} active_f,
the share of its frames in which the vocal sings. The K windows are chosen greedily: the start with the largest
A(s) (the earliest among equals, so a song that sings from 20 s on gets its window at 20 s), then the largest
among starts whose windows do not overlap any chosen one, and so on; they are returned in time order. Greedy
choice can leave fewer than K windows in a song barely longer than K * D (the gaps between chosen windows may be
shorter than D): then the min(K, floor(frames / W)) non-overlapping windows with the largest total activity are
taken instead (:func:`most_active_set`, dynamic programming, earliest among equals), and the notes say when fewer
than K fit.

Pure functions (levels -> starts) are separate from the I/O (:func:`vocal_levels_db` reads the file in blocks with
soundfile, so a 5-minute 48 kHz file never sits in memory whole).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FRAME_S = 0.1  # seconds per level frame (non-overlapping)
ACTIVE_RANGE_DB = 30.0  # a frame is active within this many dB of the file's loudest frame ...
ABSOLUTE_FLOOR_DBFS = -60.0  # ... and above this level (a silent file has no active frame)
BLOCK_FRAMES = 600  # level frames per block read from disk (60 s at FRAME_S)
RULE_TEXT = (f"auto: windows with the largest share of active {FRAME_S:g} s frames (RMS within {ACTIVE_RANGE_DB:g} "
             f"dB of the file's loudest frame and above {ABSOLUTE_FLOOR_DBFS:g} dBFS), chosen greedily, earliest "
             "among equals, non-overlapping")
MODES = ("auto", "start", "fixed")
# A window placed by 'start' or SECONDS whose vocal is active in fewer of its frames than this gets a note: an item
# whose vocal is mostly silent (an intro) benchmarks accompaniment to nothing, and its adherence is undefined.
LOW_ACTIVITY = 0.5
# More power than this lost when a vocal's channels are averaged to mono (3 dB for unrelated channels) means they
# largely cancel: the mono vocal the adherence metrics read is not the vocal that was heard.
MONO_LOSS_DB = 10.0


@dataclass(frozen=True)
class WindowRule:
    """How items are cut from songs: ``mode`` auto | start | fixed (at ``start_s``), ``per_song`` windows each."""

    mode: str = "start"
    start_s: float = 0.0
    per_song: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"window mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError(f"window start must be a number of seconds >= 0, got {self.start_s!r}")
        if self.mode != "fixed" and self.start_s:
            raise ValueError(f"window mode {self.mode!r} takes no start, got {self.start_s!r}")
        if isinstance(self.per_song, bool) or not isinstance(self.per_song, int) or self.per_song < 1:
            raise ValueError(f"windows per song must be a whole number >= 1, got {self.per_song!r}")

    @classmethod
    def from_option(cls, window: str, start_s: float = 0.0, per_song: int = 1) -> WindowRule:
        """From ``--window`` (as :func:`parse_window` left it), the older ``--start`` and ``--windows-per-song``.
        ``--start S`` is ``--window S``; both at once (S > 0 and a --window other than 'start') is a ValueError."""
        if start_s and window != "start":
            raise ValueError(f"--start {start_s:g} and --window {window} both place the window; --start S is the "
                             "same as --window S: give one of them")
        if window == "auto":
            return cls("auto", 0.0, per_song)
        start = start_s if window == "start" else float(window)
        return cls("fixed" if start else "start", start, per_song)

    def describe(self) -> str:
        each = f", {self.per_song} per song" if self.per_song > 1 else ""
        if self.mode == "auto":
            return RULE_TEXT + each
        consecutive = " (consecutive)" if self.per_song > 1 else ""
        return f"from {self.start_s:g} s{consecutive}{each}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "start_s": self.start_s, "per_song": self.per_song,
                               "rule": self.describe()}
        if self.mode == "auto":
            out.update(frame_s=FRAME_S, active_range_db=ACTIVE_RANGE_DB, absolute_floor_dbfs=ABSOLUTE_FLOOR_DBFS)
        return out


@dataclass(frozen=True)
class Window:
    """One item's window of a song: [start_s, start_s + duration_s), its vocal activity (auto only) and a note."""

    start_s: float
    duration_s: float
    activity: float | None = None  # share of active frames in the window; None where not measured (no levels)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_window(raw: str) -> str:
    """``--window``: 'auto', 'start' or a number of seconds >= 0 (kept as its shortest decimal text)."""
    text = raw.strip().lower()
    if text in ("auto", "start"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"takes auto, start or a number of seconds >= 0, got {raw!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"takes auto, start or a number of seconds >= 0, got {raw!r}")
    return "start" if value == 0 else repr(value)


# -- pure: levels -> windows ----------------------------------------------------------------------------------------


def frame_levels_db(samples: np.ndarray, frame_len: int) -> np.ndarray:
    """L_f of the module docstring for (frames,) or (frames, channels) samples: one level per whole frame of
    ``frame_len`` samples (a trailing partial frame is dropped). Digital silence is -inf dB."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or frame_len < 1:
        raise ValueError(f"samples must be (frames,) or (frames, channels) and frame_len >= 1, got {x.shape}, "
                         f"{frame_len}")
    n = x.shape[0] // frame_len
    power = (x[: n * frame_len] ** 2).reshape(n, frame_len * x.shape[1]).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(power)


def active_frames(levels_db: np.ndarray, range_db: float = ACTIVE_RANGE_DB,
                  floor_dbfs: float = ABSOLUTE_FLOOR_DBFS) -> np.ndarray:
    """active_f of the module docstring: level above max(peak - range_db, floor_dbfs)."""
    levels = np.asarray(levels_db, dtype=np.float64)
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    gate = max(float(np.max(levels)) - range_db, floor_dbfs)
    return levels > gate


def most_active_starts(active: np.ndarray, window_frames: int, k: int) -> list[int]:
    """Start frames of up to ``k`` non-overlapping windows of ``window_frames`` frames that lie wholly in
    ``active``, chosen greedily by activity (earliest among equals); in time order. [] when none fits."""
    a = np.asarray(active, dtype=np.float64)
    if window_frames < 1 or k < 1:
        raise ValueError(f"window_frames and k must be >= 1, got {window_frames}, {k}")
    n_starts = a.size - window_frames + 1
    if n_starts < 1:
        return []
    csum = np.concatenate([[0.0], np.cumsum(a)])
    score = csum[window_frames:] - csum[:n_starts]  # active frames in the window at each start
    free = np.ones(n_starts, dtype=bool)
    chosen: list[int] = []
    while len(chosen) < k and free.any():
        s = int(np.argmax(np.where(free, score, -np.inf)))  # argmax takes the first (earliest) of equal maxima
        chosen.append(s)
        free[max(0, s - window_frames + 1): s + window_frames] = False  # starts whose window would overlap s's
    fit = min(k, a.size // window_frames)
    if len(chosen) < fit:  # greedy left gaps shorter than a window: the best set of as many as fit
        return most_active_set(score, window_frames, fit)
    return sorted(chosen)


def most_active_set(score: np.ndarray, window_frames: int, m: int) -> list[int]:
    """Start frames of ``m`` non-overlapping windows with the largest total ``score`` (the active frames of the
    window at each start), earliest among equal totals; in time order. ``m`` must fit: m * window_frames <=
    len(score) + window_frames - 1.

    best[j][s] = the largest total of j windows all starting at or before s:
        best[j][s] = max(best[j][s-1], score[s] + best[j-1][s-W]),   best[0][.] = 0, best[j>0][s<0] = -inf.
    """
    n = len(score)
    best = np.full((m + 1, n + 1), -np.inf)  # column s + 1 holds best[j][s]; column 0 is "before any start"
    best[0, :] = 0.0
    take = np.zeros((m + 1, n), dtype=bool)
    for j in range(1, m + 1):
        for s in range(n):
            prior = best[j - 1, s - window_frames + 1] if s - window_frames + 1 >= 0 else (0.0 if j == 1 else -np.inf)
            with_s = score[s] + prior
            if with_s > best[j, s]:  # strictly better than the best that ends earlier: earliest among equals
                best[j, s + 1], take[j, s] = with_s, True
            else:
                best[j, s + 1] = best[j, s]
    if not np.isfinite(best[m, n]):
        raise ValueError(f"{m} windows of {window_frames} frames do not fit in {n + window_frames - 1} frames")
    starts, j, s = [], m, n - 1
    while j > 0:
        while not take[j, s]:
            s -= 1
        starts.append(s)
        s, j = s - window_frames, j - 1
    return sorted(starts)


def choose_windows(rule: WindowRule, song_s: float, duration_s: float, levels_db: np.ndarray | None = None,
                   frame_s: float = FRAME_S) -> list[Window]:
    """The windows of one song of ``song_s`` seconds by ``rule`` (``levels_db``: L_f per ``frame_s`` frame, needed
    for auto). [] when a fixed start lies at or past the song's end (the caller rejects the file)."""
    if not (duration_s > 0 and song_s > 0):
        raise ValueError(f"song and item durations must be > 0, got {song_s}, {duration_s}")
    if rule.mode != "auto":
        if rule.start_s >= song_s:
            return []
        if song_s - rule.start_s < duration_s:
            return [_with_activity(Window(rule.start_s, duration_s, None,
                                          f"the song lasts {song_s:.2f} s: the window from {rule.start_s:g} s is cut "
                                          f"at its end ({song_s - rule.start_s:.2f} s of {duration_s:g} s)"),
                                   levels_db, frame_s)]
        n = min(rule.per_song, 1 + math.floor((song_s - rule.start_s - duration_s) / duration_s + 1e-9))
        note = f"{n} of {rule.per_song} windows fit in the song ({song_s:.2f} s)" if n < rule.per_song else ""
        return [_with_activity(Window(rule.start_s + k * duration_s, duration_s, None, note), levels_db, frame_s)
                for k in range(n)]
    if levels_db is None:
        raise ValueError("the auto rule needs the vocal's frame levels")
    active = active_frames(levels_db)
    if song_s < duration_s:
        share = float(active.mean()) if active.size else 0.0
        return [Window(0.0, duration_s, round(share, 4),
                       f"the song lasts {song_s:.2f} s, shorter than the item's {duration_s:g} s: one window from "
                       "0 s, cut at the song's end")]
    window_frames = max(1, round(duration_s / frame_s))
    starts = most_active_starts(active, window_frames, rule.per_song)
    if not starts:  # the song is shorter than W whole frames (by less than a frame): from 0
        starts = [0]
    windows = []
    for s in starts:
        start = round(s * frame_s, 6)
        start = min(start, max(0.0, song_s - duration_s))  # frame rounding never pushes the end past the song
        share = float(active[s: s + window_frames].mean()) if active.size else 0.0
        windows.append(Window(start, duration_s, round(share, 4)))
    notes = []
    if len(windows) < rule.per_song:
        notes.append(f"{len(windows)} of {rule.per_song} non-overlapping windows found in the song ({song_s:.2f} s)")
    if not active.any():
        notes.append("no vocal activity found (the vocal is silent): the window starts at 0 s")
    if notes:
        windows = [Window(w.start_s, w.duration_s, w.activity, "; ".join(notes)) for w in windows]
    return windows


def window_activity(active: np.ndarray, start_s: float, duration_s: float, frame_s: float = FRAME_S) -> float:
    """A(s) of the module docstring for a window placed at ``start_s`` (not on the auto rule's frame grid): the
    share of active frames among the whole frames the window covers in the song, 0 when it covers none."""
    first = math.floor(start_s / frame_s + 1e-9)
    last = min(active.size, math.floor((start_s + duration_s) / frame_s + 1e-9))
    return float(active[first:last].mean()) if last > first else 0.0


def _with_activity(window: Window, levels_db: np.ndarray | None, frame_s: float) -> Window:
    """``window`` (placed by 'start' or SECONDS) with its vocal activity, and a note when the vocal is silent or
    mostly silent there; unchanged without levels."""
    if levels_db is None:
        return window
    active = active_frames(levels_db)
    share = round(window_activity(active, window.start_s, window.duration_s, frame_s), 4)
    low = ""
    if share == 0:
        low = ("no vocal activity in the window (the vocal is silent there): --window auto takes the windows where "
               "it sings")
    elif share < LOW_ACTIVITY:
        low = (f"the vocal is active in only {share:.0%} of the window's {frame_s:g} s frames: --window auto takes "
               "the windows where it sings most")
    return Window(window.start_s, window.duration_s, share, "; ".join(n for n in (window.note, low) if n))


# -- I/O ------------------------------------------------------------------------------------------------------------


def vocal_levels_db(path: Path, frame_s: float = FRAME_S) -> tuple[np.ndarray, float]:
    """(L_f per ``frame_s`` frame, the song's seconds) of an audio file, read in blocks of ``BLOCK_FRAMES``
    frames (any channel count: the power is averaged over channels). OSError/RuntimeError from soundfile pass
    through for the caller to name the file."""
    levels, song_s, _ = vocal_levels_and_mono_loss(path, frame_s)
    return levels, song_s


def vocal_levels_and_mono_loss(path: Path, frame_s: float = FRAME_S) -> tuple[np.ndarray, float, float]:
    """:func:`vocal_levels_db` and, from the same read, how many dB the whole file's power drops when its channels
    are averaged to mono, 10 log10( mean_c x_c^2 / (mean_c x_c)^2 ) over all samples: 0 for identical channels, 3
    for unrelated ones, +inf for channels that cancel (a phase-inverted stereo vocal, which the adherence metrics
    read as silence: they take the mono average); 0 for mono and for a silent file."""
    import soundfile as sf

    power = mono_power = 0.0
    with sf.SoundFile(str(path)) as f:
        rate, total = int(f.samplerate), int(f.frames)
        frame_len = max(1, round(frame_s * rate))
        levels = []
        for block in f.blocks(blocksize=frame_len * BLOCK_FRAMES, dtype="float32", always_2d=True):
            levels.append(frame_levels_db(block, frame_len))
            x = block.astype(np.float64)
            power += float((x**2).mean(axis=1).sum())
            mono_power += float((x.mean(axis=1) ** 2).sum())
    out = np.concatenate(levels) if levels else np.zeros(0)
    if np.isnan(out).any() or np.isposinf(out).any():
        raise ValueError("holds NaN or infinite samples")
    if power <= 0.0:
        return out, total / rate, 0.0
    loss = math.inf if mono_power <= 0.0 else 10.0 * math.log10(power / mono_power)
    return out, total / rate, loss


def song_windows(path: Path, rule: WindowRule, duration_s: float) -> list[Window]:
    """The windows of the song at ``path`` by ``rule``, each with its vocal activity (the file is decoded once,
    for every rule: a window from 0 s that falls in an intro is said, not benchmarked in silence)."""
    levels, song_s, mono_loss = vocal_levels_and_mono_loss(path)
    windows = choose_windows(rule, song_s, duration_s, levels)
    if mono_loss > MONO_LOSS_DB:  # said once per song, on each of its windows
        lost = "all" if math.isinf(mono_loss) else f"{mono_loss:.0f} dB"
        cancels = (f"its channels cancel in the mono average ({lost} of its power lost; phase-inverted?), which the "
                   "adherence metrics read: they see a silent or faint vocal")
        windows = [Window(w.start_s, w.duration_s, w.activity, "; ".join(n for n in (w.note, cancels) if n))
                   for w in windows]
    return windows


def window_item_id(stem_id: str, index: int, per_song: int) -> str:
    """The item id of a song's window ``index`` (0-based, time order): the stem alone when one window per song is
    asked for (the ids of earlier runs), ``<stem>__w<index + 1>`` otherwise."""
    return stem_id if per_song == 1 else f"{stem_id}__w{index + 1}"
