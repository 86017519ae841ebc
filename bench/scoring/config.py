"""What the score pass computes: one frozen config that travels into scores.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.metrics.pitch import DEFAULT_PITCH_TRACKER, check_tracker
from bench.resample import RESAMPLERS
from bench.scoring.registry import check_groups, group_names

REFERENCE_MODEL = "reference"  # the row of the items' true accompaniments: the adherence anchors come from it
KAD_BANDWIDTH_RULES = ("reference", "kadtk")  # median pairwise distance of the reference set | of each eval set
# --score-on: what the signal, aesthetics and FAD-family metrics are computed on (adherence and APA read the
# accompaniment with its vocal whatever this says); "mix" = the vocal window + the accompaniment, loudness-matched
SCORE_ON = {"accompaniment": ("accompaniment",), "mix": ("mix",), "both": ("accompaniment", "mix")}


@dataclass(frozen=True)
class ScoreConfig:
    """What the score pass computes; it travels into scores.json."""

    groups: tuple[str, ...] = tuple(group_names())  # metric groups (bench.scoring.registry)
    embedders: tuple[str, ...] = ("vggish",)  # fadtk's default FAD embedder
    embedder_weights: dict[str, str] = field(default_factory=dict)  # embedder -> local path or hub id
    aesthetics_weights: str | None = None  # local path or hub id; default facebook/audiobox-aesthetics
    fad_reference: Path | None = None  # audio folder or statistics .npz; default: the items' true accompaniments
    score_random: bool = False  # random-weight samples are plumbing: scored only when asked, and labelled
    resamples: int = 1000  # bootstrap resamples for every CI
    seed: int = 0  # bootstrap, FAD-inf subsets and the anchors' derangement
    kad_bandwidth: str = "reference"  # KAD_BANDWIDTH_RULES
    resampler: str = "soxr"  # RESAMPLERS: to 16 kHz for VGGish and audiobox-aesthetics
    baseline: str = "samuel"  # paired differences: every model minus this one
    device: str = "cpu"
    cache: Path | None = None  # embedding cache; default RunFolder.embeddings_dir
    score_on: str = "accompaniment"  # SCORE_ON: accompaniment | mix | both
    pitch_tracker: str = DEFAULT_PITCH_TRACKER  # adherence's: swift-f0 (default; agrees with pYIN) | pyin
    score_workers: int | None = None  # processes for the per-clip groups without weights; None: one per core
    feature_cache: Path | None = None  # vocal features shared by runs; default DIR/cache/vocal-features

    def __post_init__(self) -> None:
        check_groups(self.groups)
        check_tracker(self.pitch_tracker)
        if self.score_workers is not None and (isinstance(self.score_workers, bool)
                                               or not isinstance(self.score_workers, int) or self.score_workers < 1):
            raise ValueError(f"score_workers must be a whole number >= 1 or None (automatic), "
                             f"got {self.score_workers!r}")
        if self.score_on not in SCORE_ON:
            raise ValueError(f"score_on must be one of {tuple(SCORE_ON)}, got {self.score_on!r}")
        if self.kad_bandwidth not in KAD_BANDWIDTH_RULES:
            raise ValueError(f"kad_bandwidth must be one of {KAD_BANDWIDTH_RULES}, got {self.kad_bandwidth!r}")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"resampler must be one of {RESAMPLERS}, got {self.resampler!r}")

    @property
    def views(self) -> tuple[str, ...]:
        """The views --score-on asks for, in order (bench.scoring.inputs.VIEWS)."""
        return SCORE_ON[self.score_on]

    def weights_for(self, option: str | None, name: str | None = None) -> str | None:
        """The checkpoint a group's ``weights_option`` names (per embedder for ``embedder_weights``)."""
        if option is None:
            return None
        value = getattr(self, option)
        return value.get(name) if isinstance(value, dict) else value

    def to_dict(self) -> dict[str, Any]:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        d["groups"], d["embedders"] = list(self.groups), list(self.embedders)
        return d
