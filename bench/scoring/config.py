"""What the score pass computes: one frozen config that travels into scores.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scoring.registry import check_groups, group_names

REFERENCE_MODEL = "reference"  # the row of the items' true accompaniments: the adherence anchors come from it


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
    baseline: str = "samuel"  # paired differences: every model minus this one
    device: str = "cpu"
    cache: Path | None = None  # embedding cache; default RunFolder.embeddings_dir

    def __post_init__(self) -> None:
        check_groups(self.groups)

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
