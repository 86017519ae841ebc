"""The paper's published values (Cheung, Zhang, Chan; Tables I and II), keyed by our registry names.

Quoted exactly as printed. The paper states no hardware, batch size, number of runs or whether its times include
loading, and gives no confidence intervals; Jukebox's time is quoted from a tutorial, not measured by the authors.
Table I's means are of 10 tracks in the version quoted and of 100 samples (50 reference tracks) in an earlier one:
:data:`TABLE1_N` keeps both, and Table I compares with the smaller.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperTable2Row:
    label: str  # as printed
    params: str
    params_value: float  # for comparisons
    time: str
    time_s: float | None  # None where the paper gives no measurement
    conditioning: str


TABLE2: dict[str, PaperTable2Row] = {
    "jukebox": PaperTable2Row("OpenAI Jukebox", "5.0B", 5.0e9, "> 6 h (quoted from a tutorial, not measured)",
                              None, "Lyrics + Genre"),
    "stable-audio-open": PaperTable2Row("Stable Audio Open", "1.2B", 1.2e9, "25 s", 25.0, "Text description"),
    "musicgen-large": PaperTable2Row("MusicGen - Large", "3.3B", 3.3e9, "1083 s", 1083.0, "Vocal + Text"),
    "musicgen-small": PaperTable2Row("MusicGen - Small", "300M", 300e6, "236 s", 236.0, "Vocal + Text"),
    "samuel": PaperTable2Row("SAMUeL", "15M", 15e6, "21 s", 21.0, "Vocal melody"),
}

# Table I: AudioBox-Aesthetics means (1-10). The paper's CU is "Content Unity"; the model's axis is
# "Content Usefulness".
TABLE1: dict[str, dict[str, float]] = {
    "reference": {"PQ": 7.92, "PC": 6.26, "CE": 7.36, "CU": 7.61},
    "musicgen": {"PQ": 7.99, "PC": 5.62, "CE": 7.99, "CU": 8.14},
    "stable-audio-open": {"PQ": 7.54, "PC": 4.06, "CE": 6.84, "CU": 7.71},
    "jukebox": {"PQ": 5.30, "PC": 5.97, "CE": 4.83, "CU": 4.66},
    "samuel": {"PQ": 5.73, "PC": 5.14, "CE": 2.93, "CU": 4.97},
}


@dataclass(frozen=True)
class PaperN:
    """How many clips each Table I mean averages, by version of the paper, and the n our comparison uses."""

    quoted: int | None  # the version we quote
    earlier: int | None  # the earlier version (same values)
    earlier_says: str

    @property
    def used(self) -> int | None:
        """The smaller n: the wider bound, so a cell is flagged only when both readings flag it (the bound shrinks
        as n grows, for the same per-clip SD). None when neither version gives one."""
        known = [n for n in (self.quoted, self.earlier) if n is not None]
        return min(known) if known else None


# The version we quote: "the average score of the ten tracks are reported in Table I" (every row). The earlier
# version prints the same values "across 100 generated samples and 50 reference tracks"; it does not say whether
# 100 is per model or in all, so 100 is the most it can mean per row. Both readings are kept; the comparison uses
# the smaller n (PaperN.used).
_TEN = "the average score of the ten tracks"
TABLE1_N: dict[str, PaperN] = {
    "reference": PaperN(10, 50, "50 reference tracks"),
    **{row: PaperN(10, 100, "100 generated samples (per model or in all: not stated)")
       for row in ("musicgen", "stable-audio-open", "jukebox", "samuel")},
}
TABLE1_N_SOURCE = (f"n per Table I mean: 10 in the version quoted (\"{_TEN}\"); the earlier version says 100 "
                   "generated samples and 50 reference tracks")
