"""``samuel-eval score EVAL_DIR --reference REF_DIR [--vocals DIR]``: scores for a folder of audio files.

fadtk's one-liner (``fadtk MODEL REF_DIR EVAL_DIR``) with what this harness adds: a 95% CI and n on every number,
kadtk-comparable KAD, audiobox-aesthetics, vocal adherence (with ``--vocals``), the content-addressed cache (a
rerun computes only what is missing or changed) and the self-contained HTML report.

**Items.** One per audio file of EVAL_DIR (sub-folders and symlinked folders too, a link loop named; .wav .flac .ogg
.opus .mp3 .aif, any rate, mono or stereo), named by its path without extension (less `samuel generate`'s
``.accompaniment``: ``x.accompaniment.wav`` is x's). A file named as a stem in a song folder (``Song
A/accompaniment.wav``, MUSDB18 and Demucs trees) goes by its song folder (``Song A``). Names compare case-insensitive
and composed (Unicode NFC: ``café`` saved decomposed is ``café``). The item id is the file's stem where no other
audio file of EVAL_DIR has it (so a flat folder's ids are its stems), else its relative path with ``/`` as ``__``
(``artist1/track01.wav`` is ``artist1__track01``), characters outside ``[A-Za-z0-9-_.]`` as ``_``. The reference is
the file of REF_DIR at the same relative path (in a song folder, the one named as an accompaniment: ``Song
A/no_vocals.wav``), else the one file there with the same stem when no other eval file left unmatched has that stem
either (``x.wav`` with ``sub/x.flac``; never ``a/x.wav`` and ``b/x.wav`` with one ``x.flac``: named as ambiguous);
the vocal likewise in ``--vocals`` (``Song A/vocals.wav``). Each item lasts as long as its eval file and starts at 0:
the reference and the vocal are read over the same seconds (a longer reference is cut; a shorter one sets the item's
common crop, so both rows are scored over the seconds both have, as scores.json's ``crop`` says; a vocal that ends
more than 1 s early cuts the item to its own length, said before the run: adherence compares the two in lockstep).
What does not match is listed and the run goes on: an eval file without a reference (the reference row misses that
item: exit 1), an eval file without a vocal (its adherence is not scored: exit 1), and references or vocals no eval
file asks for (unused, not an error). Two files of one folder with one name (``x.wav`` beside ``x.flac``) are both
refused by name: which one is meant cannot be known. An eval file that cannot be read is refused by name and the rest
are scored (exit 1). A reference or vocals folder that is EVAL_DIR, holds it or lies inside it is refused (exit 2):
eval files would be their own reference or vocal; a partner that is the eval file itself through a symlink is not
used, named.

**The run** is :func:`bench.evaluate.evaluate` over a run folder (default ``samuel-eval-scores/<name>``, or
``<name>-<hash of EVAL_DIR's path>`` when that one holds another folder's results, said; an ``--out`` that holds
another folder's results is refused, never replaced; never inside the input folders, whose files would then be read
as inputs) with two rows: ``reference`` (REF_DIR) and
``outputs:<name>=EVAL_DIR`` (:class:`baselines.files.PregeneratedOutputs`), passes generate, score, report. So it
has the lock, results.json's provenance, the per-clip and embedding caches and the report of ``samuel-eval``.
Without ``--vocals`` the groups that need a vocal (adherence, APA) are switched off with a note in the default
``--metrics`` (every group); named in ``--metrics``, alone or with others, they are refused (exit 2): asked for, they
would silently be missing. ``--seed`` draws the bootstrap resamples and the shuffled-pairs anchor; a file's audio
depends on none, so another seed reads and scores no file again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines import registry
from bench import options as o
from bench.evaluate import EvalConfig, EvalResult, ReportPass, evaluate
from bench.manifest import (
    Item,
    Manifest,
    ManifestError,
    Rejected,
    item_seed_for_id,
    probe_vocal,
    safe_name,
)
from bench.metrics.adherence import MAX_DURATION_MISMATCH_S
from bench.options import UsageError, option
from bench.runfolder import RunFolder
from bench.scoring.registry import MIX_SET, VOCAL_PAIR, group
from samuel.audio import AUDIO_EXTENSIONS, undecodable_audio_files, undecodable_audio_problem
from samuel.folder_walk import files_under
from samuel.hashing import file_sha256
from samuel.stem_names import matching_name, matching_path, name_key, stem_folder_songs_under, stem_name_role

SCORE_PASSES = ("generate", "score", "report")
DEFAULT_OUT_ROOT = Path("samuel-eval-scores")
REFERENCE_ROW = "reference"
# A file's audio depends on no seed, and the item seed is part of its sample ids: one fixed base (the default --seed's,
# so runs made before keep their samples) lets --seed change only what it drives, the bootstrap and the shuffled anchor
FILE_ITEM_SEED_BASE = 0
VOCAL_KINDS = (VOCAL_PAIR, MIX_SET)  # metric groups that read the vocal each accompaniment was made for


def same_option(name: str) -> Any:
    """The field ``name`` of :class:`EvalConfig` (flag, help, parser, default) for this command: one declaration."""
    f = {f.name: f for f in dataclasses.fields(EvalConfig)}[name]
    if f.default_factory is not dataclasses.MISSING:
        return field(default_factory=f.default_factory, metadata=f.metadata)
    return field(default=f.default, metadata=f.metadata)


@dataclass(frozen=True)
class ScoreFolders:
    """What ``samuel-eval score`` is asked; each field but ``eval_dir`` is a command-line option."""

    eval_dir: Path
    reference: Path | None = option(None, flags=["--reference", "--references"], parse=o.path, metavar="REF_DIR",
                                    help="true accompaniments (required), matched to EVAL_DIR's files by relative "
                                         "path, else by stem")
    vocals: Path | None = option(None, flags=["--vocals"], parse=o.path, metavar="DIR",
                                 help="the vocal each eval file was made for, matched as references are "
                                      "(adherence, APA)")
    name: str | None = option(None, flags=["--name"], help="the row's name (default: EVAL_DIR's folder name)")
    out: Path | None = option(None, flags=["--out"], parse=o.path,
                              help=f"the run folder (default {DEFAULT_OUT_ROOT}/<name>, or <name>-<hash> when that "
                                   "holds another folder's results; never inside the inputs)")
    metrics: tuple[str, ...] = same_option("metrics")
    embedders: tuple[str, ...] = same_option("embedders")
    embedder_weights: dict[str, str] = same_option("embedder_weights")
    aesthetics_weights: str | None = same_option("aesthetics_weights")
    fad_reference: Path | None = same_option("fad_reference")
    resamples: int = same_option("resamples")
    seed: int = same_option("seed")
    kad_bandwidth: str = same_option("kad_bandwidth")
    resampler: str = same_option("resampler")
    score_on: str = same_option("score_on")
    pitch_tracker: str = same_option("pitch_tracker")
    score_workers: int | None = same_option("score_workers")
    feature_cache: Path | None = same_option("feature_cache")
    html: Path | None = same_option("html")
    downmix: bool = same_option("downmix")
    device: str = same_option("device")
    no_progress: bool = same_option("no_progress")

    @property
    def row_name(self) -> str:
        """The eval row's name: ``--name`` or the folder's, made a safe file name that is no registered model's."""
        name = safe_name(self.name or self.eval_dir.resolve().name or "eval")
        try:
            registry.parse_outputs_spec(f"{registry.OUTPUTS_PREFIX}{name}=x")
        except registry.UnknownModelError:  # "reference", "samuel", ...: the row must not shadow a model
            name = f"{name}-files"
        return name

    @property
    def out_dir(self) -> Path:
        """``--out``, else ``samuel-eval-scores/<name>``, or ``<name>-<hash of EVAL_DIR's resolved path>`` when that
        folder holds the results of another folder (runs/a/samples and runs/b/samples are both 'samples')."""
        if self.out is not None:
            return self.out
        default = DEFAULT_OUT_ROOT / self.row_name
        if results_of_another(default, self.eval_dir) is None:
            return default
        digest = hashlib.sha256(str(self.eval_dir.resolve()).encode()).hexdigest()[:8]
        return DEFAULT_OUT_ROOT / f"{self.row_name}-{digest}"

    def out_note(self) -> str | None:
        """Why the run folder is not the plain default, or None."""
        default = DEFAULT_OUT_ROOT / self.row_name
        if self.out is not None or (other := results_of_another(default, self.eval_dir)) is None:
            return None
        return f"score: {default} holds the results of {other}; these go to {self.out_dir}"

    def check(self) -> None:
        """UsageError (exit 2) for a request that cannot run, before any work."""
        if self.reference is None:
            raise UsageError("--reference REF_DIR is required: the true accompaniments, matched by file name "
                             "(an unpaired background set goes in --fad-reference as well)")
        folders = {"EVAL_DIR": self.eval_dir, "--reference": self.reference, "--vocals": self.vocals}
        for flag, folder in folders.items():
            if folder is not None and not folder.is_dir():
                raise UsageError(f"{flag} {folder}: no such folder")
        for flag, folder, what, named in (("--reference", self.reference, "reference", "true accompaniments"),
                                          ("--vocals", self.vocals, "vocal", "vocals the eval files were made for")):
            if folder is not None and (overlap := _overlap(folder, self.eval_dir)) is not None:
                raise UsageError(f"{flag} {folder} {overlap} EVAL_DIR {self.eval_dir}: eval files would be scored "
                                 f"as their own {what}; {flag} names a folder of the {named}, apart from EVAL_DIR")
        if self.vocals is None and (asked := self.vocal_groups_asked()):
            named = ", ".join(asked)
            raise UsageError(f"--metrics {','.join(self.metrics)}: {named} needs --vocals DIR (the vocal each eval "
                             f"file was made for): add --vocals, or leave {named} out of --metrics")
        if self.score_on != "accompaniment" and self.vocals is None:
            raise UsageError(f"--score-on {self.score_on} scores vocal + accompaniment mixes: it needs --vocals DIR")
        if self.fad_reference is not None and self.fad_reference.is_dir():  # the rows' clips would join the FAD set
            folders["--fad-reference"] = self.fad_reference
        if self.out is not None and (other := results_of_another(self.out, self.eval_dir)) is not None:
            raise UsageError(f"--out {self.out} holds the results of {other}; scoring {self.eval_dir} there would "
                             "replace them: pick another --out, or delete that folder first")
        for flag, folder in folders.items():
            if folder is not None and RunFolder(self.out_dir).lies_inside(folder):
                raise UsageError(f"--out {self.out_dir} lies inside {flag} {folder}: its files would be read as "
                                 "inputs; pick a folder outside it")

    def vocal_groups_asked(self) -> list[str]:
        """The metric groups that read a vocal (adherence, APA) named in an explicit ``--metrics``; [] for the default
        (every group), where those are switched off with a note when there is no vocal."""
        default = {f.name: f for f in dataclasses.fields(self)}["metrics"].default_factory()  # type: ignore[misc]
        return [] if self.metrics == tuple(default) else [m for m in self.metrics if group(m).kind in VOCAL_KINDS]

    def eval_config(self, n_items: int) -> EvalConfig:
        """The run this request is: the reference and the eval row, generate (read the files), score, report."""
        return EvalConfig(
            models=(REFERENCE_ROW, f"{registry.OUTPUTS_PREFIX}{self.row_name}={self.eval_dir}"), n=n_items,
            out=self.out_dir, vocals=self.vocals, references=self.reference, passes=SCORE_PASSES,
            metrics=self.metrics, embedders=self.embedders, embedder_weights=self.embedder_weights,
            aesthetics_weights=self.aesthetics_weights, fad_reference=self.fad_reference, resamples=self.resamples,
            seed=self.seed, kad_bandwidth=self.kad_bandwidth, resampler=self.resampler, score_on=self.score_on,
            pitch_tracker=self.pitch_tracker, score_workers=self.score_workers, feature_cache=self.feature_cache,
            html=self.html,
            downmix=self.downmix, device=self.device, no_progress=self.no_progress,
            baseline=REFERENCE_ROW)  # paired differences: the eval row minus the true accompaniments


def results_of_another(out: Path, eval_dir: Path) -> str | None:
    """What other inputs the run folder ``out`` holds the results of: the eval folder its manifest records (its
    resolved path), or the vocals of a samuel-eval run; None when it holds EVAL_DIR's, nothing, or a manifest that
    cannot be read (the run rewrites a damaged one, as samuel-eval does)."""
    manifest, _ = RunFolder(out).stored_manifest()
    if manifest is None:
        return None
    recorded = manifest.request.get("eval") if manifest.request.get("score_folders") else None
    if recorded is None:
        return f"a samuel-eval run over {manifest.source}"
    return None if recorded == str(eval_dir.resolve()) else str(recorded)


def _overlap(folder: Path, eval_dir: Path) -> str | None:
    """How ``folder`` and ``eval_dir`` share files ('is', 'lies inside', 'holds'; resolved, links followed), or
    None when they are apart."""
    a, b = folder.resolve(), eval_dir.resolve()
    return "is" if a == b else "lies inside" if b in a.parents else "holds" if a in b.parents else None


@dataclass(frozen=True)
class Unmatched:
    """Files that found no partner by stem; the run goes on without the missing half."""

    without_reference: tuple[str, ...] = ()  # eval files
    without_vocal: tuple[str, ...] = ()  # eval files (only with --vocals)
    unused_references: tuple[str, ...] = ()
    unused_vocals: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()  # "eval file: n references share its name ... (a/x.wav, b/x.wav)", one each
    vocal_shorter: tuple[str, ...] = ()  # eval files whose vocal ends early: the item is cut to the vocal

    def lines(self) -> list[str]:
        what = {"without_reference": "eval file(s) with no reference of the same name (no reference row for them)",
                "without_vocal": "eval file(s) with no vocal of the same name (adherence not scored for them)",
                "unused_references": "reference(s) that no eval file's name asks for (not used)",
                "unused_vocals": "vocal(s) that no eval file's name asks for (not used)",
                "vocal_shorter": (f"eval file(s) whose vocal ends more than {MAX_DURATION_MISMATCH_S:g} s before "
                                  "them: each is scored, in every row, over its vocal's seconds only")}
        lines = [f"{'cut' if k == 'vocal_shorter' else 'unmatched'}: {len(paths)} {what[k]}: "
                 f"{', '.join(_shown(paths))}" for k, paths in self.to_dict().items() if paths and k in what]
        return lines + [f"unmatched: {line}" for line in self.ambiguous]

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


def _shown(paths: list[str]) -> list[str]:
    """``paths`` relative to the folder they all lie in: names in a flat folder, ``artist1/track01.wav`` in a tree."""
    if len(paths) == 1:
        return [Path(paths[0]).name]
    common = os.path.commonpath([str(Path(p).parent) for p in paths])
    return [os.path.relpath(p, common) for p in paths]


@dataclass
class ScoreFoldersResult:
    run: EvalResult
    manifest: Manifest
    unmatched: Unmatched

    @property
    def exit_code(self) -> int:
        return self.run.exit_code


# -- folders -> items -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderAudio:
    """The audio files of one folder, as :func:`audio_by_path` reads them."""

    files: dict[str, Path]  # matching path (name key) -> the one file at it
    rejected: list[Rejected]
    stems: Counter[str]  # stem (the matching path's last part) -> files with it, refused ones counted


def audio_by_path(folder: Path, role: str | None = None) -> FolderAudio:
    """The audio files under ``folder`` by matching path (:func:`~samuel.stem_names.matching_path` as a name key:
    ``artist1/track01``, ``song a``); a path held by two or more files (``x.wav`` beside ``x.flac`` in one folder) is
    refused, all of its files named (which one is meant cannot be known).

    A file named as a stem in a song folder (``Song A/accompaniment.wav``, MUSDB18 and Demucs trees) goes by its
    song folder's path (``song a``); with ``role`` ('accompaniment' for references, 'vocals' for vocals), such files
    of another role (the song's drums, mixture, ...) are not taken at all."""
    by_path: dict[str, list[Path]] = defaultdict(list)
    walk = files_under(folder)  # symlinked folders too; a loop is named, not followed
    for path in walk.files:
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            named_as = stem_name_role(path.stem) if path.parent != folder else None
            if named_as is not None and role is not None and named_as != role:
                continue
            by_path[name_key(matching_path(path, folder))].append(path)
    rejected = [Rejected(str(p), f"{len(paths)} files share the name {key!r} "
                                 f"({', '.join(str(q.relative_to(folder)) for q in paths)}); keep one")
                for key, paths in by_path.items() if len(paths) > 1 for p in paths]
    rejected += [Rejected(str(p), str(undecodable_audio_problem(p))) for p in undecodable_audio_files(folder)]
    rejected += [Rejected(str(p), why) for p, why in walk.skipped.items()]
    return FolderAudio({key: paths[0] for key, paths in by_path.items() if len(paths) == 1}, rejected,
                       Counter(_stem(key) for key, paths in by_path.items() for _ in paths))


def _outside(files: Mapping[str, Path], rejected: list[Rejected], where: str, others: Mapping[str, Path | None]
             ) -> dict[str, Path]:
    """``files`` less those whose real path lies in one of ``others`` (reached through a symbolic link), each named
    in ``rejected`` (appended to)."""
    real = {flag: Path(os.path.realpath(folder)) for flag, folder in others.items() if folder is not None}
    kept: dict[str, Path] = {}
    for key, path in files.items():
        inside = next((flag for flag, root in real.items() if root in Path(os.path.realpath(path)).parents), None)
        if inside is None:
            kept[key] = path
        else:
            rejected.append(Rejected(str(path), f"in {where}, but a symbolic link leads it into the {inside} folder "
                                                f"{others[inside]}: not read as a file of {where}"))
    return kept


def _stem(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def pair_by_path(wanted: Collection[str], offered: Collection[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(wanted key -> offered key, wanted key -> its candidates when ambiguous) for matching paths (name keys).

    A key matches the offered one at the same relative path; failing that, the offered one with its stem (last
    part) when exactly one offered and one wanted key left unmatched have that stem: ``x`` with ``sub/x``, never
    ``a/x`` and ``b/x`` with one ``x`` (which one is meant cannot be known). Pure: no I/O."""
    pairs = {key: key for key in wanted if key in offered}
    left = [key for key in offered if key not in pairs]
    wanted_stems = Counter(_stem(key) for key in wanted if key not in pairs)
    ambiguous: dict[str, list[str]] = {}
    for key in (k for k in wanted if k not in pairs):
        candidates = [o for o in left if _stem(o) == _stem(key)]
        if len(candidates) == 1 and wanted_stems[_stem(key)] == 1:
            pairs[key] = candidates[0]
        elif candidates:
            ambiguous[key] = candidates
    return pairs, ambiguous


def item_ids(keys: Collection[str], paths: Mapping[str, Path], root: Path, all_stems: Counter[str]
             ) -> dict[str, str]:
    """key -> item id: the file's matching name (its stem) where no other audio file under ``root`` has that
    stem (``all_stems``: stem -> files, doubled ones counted), else its matching path with ``/`` as ``__``
    (``artist1__track01``), so that ids are unique and a flat folder's stay as they always were."""
    return {key: safe_name(matching_name(paths[key], root) if all_stems[_stem(key)] == 1
                           else matching_path(paths[key], root).replace("/", "__")) for key in keys}


def _duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _refuse_stem_folder_songs(flag: str, folder: Path | None, eval_dir: Path) -> None:
    """A MoisesDB tree (songs kept as folders of tracks) holds no file per song: its vocal and accompaniment are
    sums of tracks, which only a samuel-eval run writes (bench.part_sums). Read here, each track would be a stem of
    its own and match nothing, or the wrong clip."""
    if folder is None or not folder.is_dir():
        return
    files = [p for p in files_under(folder).files if p.suffix.lower() in AUDIO_EXTENSIONS]
    songs = stem_folder_songs_under(folder, files)
    if songs:
        example = next(iter(songs))
        raise ManifestError(
            f"{flag} {folder} keeps {len(songs)} song(s) as folders of stem tracks (MoisesDB layout, e.g. "
            f"{example.relative_to(folder) if example != folder else folder.name}), and samuel-eval score reads one "
            f"file per clip. Score them with a run, which sums each song's tracks into its run folder: samuel-eval "
            f"--vocals {folder} --references {folder} --models reference,outputs:NAME={eval_dir} --out DIR "
            "(outputs named after the song, e.g. <song>.wav)")


def folder_items(eval_dir: Path, references: Path, vocals: Path | None = None, *, downmix: bool = False
                 ) -> tuple[Manifest, Unmatched]:
    """Items from EVAL_DIR's files, each matched by relative path, else by a stem no other file shares, to a
    reference (and a vocal): see the module docstring.

    Raises ManifestError when no eval file is usable or no reference matches any of them."""
    found = audio_by_path(eval_dir)
    evals, rejected = found.files, list(found.rejected)
    if not evals and not rejected:
        raise ManifestError(f"{eval_dir}: no audio files ({' '.join(AUDIO_EXTENSIONS)})")
    for flag, folder in (("--reference", references), ("--vocals", vocals)):
        _refuse_stem_folder_songs(flag, folder, eval_dir)
    refs = audio_by_path(references, "accompaniment")
    voc = audio_by_path(vocals, "vocals") if vocals is not None else FolderAudio({}, [], Counter())
    rejected += refs.rejected + voc.rejected
    # a symlinked sub-folder can lead from one folder into another: a reference read as an output (or an output as
    # a reference) would be averaged into the wrong row, so such files are named and left out
    evals = _outside(evals, rejected, "EVAL_DIR", {"--reference": references, "--vocals": vocals})
    refs = dataclasses.replace(refs, files=_outside(refs.files, rejected, "--reference", {"EVAL_DIR": eval_dir}))
    voc = dataclasses.replace(voc, files=_outside(voc.files, rejected, "--vocals", {"EVAL_DIR": eval_dir}))
    ref_of, ambiguous_refs = pair_by_path(evals, refs.files)
    vocal_of, ambiguous_vocals = pair_by_path(evals, voc.files)
    ids = item_ids(evals, evals, eval_dir, found.stems)
    items: list[Item] = []
    taken: dict[str, Path] = {}
    without_ref, without_vocal, vocal_shorter = [], [], []
    # by stem, then path: the order of the runs made when items were matched by stem, whose manifests then stay
    for key, path in sorted(evals.items(), key=lambda kv: (_stem(kv[0]), kv[0])):
        item_id = ids[key]
        if item_id in taken:
            rejected.append(Rejected(str(path), f"its item id {item_id!r} is already taken by {taken[item_id].name}"
                                                "; rename one of them to keep both"))
            continue
        problem = probe_vocal(path, 0.0, downmix)  # the same header checks as a vocal: empty, unreadable, channels
        if problem is not None:
            rejected.append(Rejected(str(path), problem))
            continue
        taken[item_id] = path
        ref = refs.files[ref_of[key]] if key in ref_of else None
        vocal = voc.files[vocal_of[key]] if key in vocal_of else None
        # a symlink can make a partner the eval file itself, or the vocal the reference: never paired with itself
        if ref is not None and ref.resolve() == path.resolve():
            rejected.append(Rejected(str(ref), f"not used as the reference of {path}: it is that file itself"))
            ref = None
        if vocal is not None and vocal.resolve() in {path.resolve(), ref.resolve() if ref else None}:
            rejected.append(Rejected(str(vocal), f"not used as the vocal of {path}: it is that file itself or its "
                                                 "reference"))
            vocal = None
        if vocal is not None and (vocal_problem := probe_vocal(vocal, 0.0, downmix)) is not None:
            rejected.append(Rejected(str(vocal), f"not used as the vocal of {path.name}: {vocal_problem}"))
            vocal = None
        if ref is None:
            without_ref.append(str(path))
        if vocals is not None and vocal is None:
            without_vocal.append(str(path))
        duration = _duration(path)
        if vocal is not None and (vocal_s := _duration(vocal)) < duration - MAX_DURATION_MISMATCH_S:
            # adherence compares vocal and accompaniment frame by frame over one span: the item becomes the
            # seconds all its files have, as a shorter reference's common crop does for the rows
            duration = vocal_s
            vocal_shorter.append(str(path))
        eval_sha = file_sha256(path)
        ref_sha = file_sha256(ref) if ref is not None else ""
        # the sample id depends on the bytes of both files: a changed file is read and scored anew on a rerun
        sources = hashlib.sha256(f"{eval_sha}\0{ref_sha}".encode()).hexdigest()
        items.append(Item(item_id, str(vocal) if vocal else None, "", item_seed_for_id(FILE_ITEM_SEED_BASE, item_id),
                          duration, str(ref) if ref else None, file_sha256(vocal) if vocal else "",
                          downmix=downmix, sources_sha256=sources))
    if not items:
        reasons = "; ".join(f"{Path(r.path).name}: {r.problem}" for r in rejected[:3])
        raise ManifestError(f"{eval_dir}: no usable audio file ({reasons})")
    if len(without_ref) == len(items):
        raise ManifestError(f"no file of {references} matches a file of {eval_dir} (e.g. "
                            f"{Path(without_ref[0]).name}): files are matched by name (x.wav with x.flac), at the "
                            "same relative path or by a name no other file shares; an unpaired background set goes "
                            "in --fad-reference")
    ambiguous = [f"{evals[key].relative_to(eval_dir)}: {len(paths)} {what} share its name and none lies at its "
                 f"relative path ({', '.join(str(folder.files[p].relative_to(root)) for p in paths)})"
                 for what, folder, root, found_ambiguous in (("references", refs, references, ambiguous_refs),
                                                             ("vocals", voc, vocals, ambiguous_vocals))
                 for key, paths in sorted(found_ambiguous.items()) if root is not None]
    unmatched = Unmatched(tuple(without_ref), tuple(without_vocal),
                          tuple(str(p) for k, p in sorted(refs.files.items()) if k not in ref_of.values()),
                          tuple(str(p) for k, p in sorted(voc.files.items()) if k not in vocal_of.values()),
                          tuple(ambiguous), tuple(vocal_shorter))
    request = {"score_folders": True, "eval": str(eval_dir), "references": str(references),
               "vocals": str(vocals) if vocals else None, "downmix": downmix,
               "unmatched": unmatched.to_dict()}
    return Manifest(tuple(items), f"score: {eval_dir} against {references}", FILE_ITEM_SEED_BASE, tuple(rejected),
                    request), unmatched


# -- the run ------------------------------------------------------------------------------------------------------


def score_folders(cfg: ScoreFolders, *, report: ReportPass | None = None, log: Callable[[str], None] | None = None,
                  argv: list[str] | None = None) -> ScoreFoldersResult:
    """Build the items from the folders and run generate (read the files), score and report over ``cfg.out_dir``.

    Raises UsageError, ManifestError or RunFolderError (exit 2) before any work when the request cannot run."""
    import sys

    say = log or (lambda s: print(s, file=sys.stderr))
    cfg.check()
    assert cfg.reference is not None  # check() refuses a request without it
    if note := cfg.out_note():
        say(note)
    # absolute paths in the manifest: the report's players and a rerun from another folder find the files
    cfg = dataclasses.replace(cfg, eval_dir=cfg.eval_dir.resolve(), reference=cfg.reference.resolve(),
                              vocals=cfg.vocals.resolve() if cfg.vocals else None, out=cfg.out_dir)
    manifest, unmatched = folder_items(cfg.eval_dir, cfg.reference, cfg.vocals, downmix=cfg.downmix)
    say(f"score: {len(manifest.items)} item(s) from {cfg.eval_dir} as row {cfg.row_name!r}, against "
        f"{cfg.reference}{f' with vocals from {cfg.vocals}' if cfg.vocals else ''}; run folder {cfg.out_dir}")
    for line in unmatched.lines():
        say(line)
    if cfg.vocals is not None and (line := quiet_vocals_line(manifest)):
        say(line)
    result = evaluate(cfg.eval_config(len(manifest.items)), report=report, log=say, argv=argv, manifest=manifest)
    return ScoreFoldersResult(result, manifest, unmatched)


def quiet_vocals_line(manifest: Manifest) -> str | None:
    """One line naming the items whose vocal is silent or mostly silent over the seconds their eval file covers
    (from 0 s, as the files are matched), or None. Eval clips of 30 s made from a song's sung part, against the whole
    song's vocal, read its intro: every adherence value is then undefined or meaningless."""
    from bench.windows import LOW_ACTIVITY, WindowRule, song_windows

    quiet = []
    for item in manifest.items:
        if item.vocal is None:
            continue
        try:
            (window,) = song_windows(Path(item.vocal), WindowRule("start"), item.duration_s)
        except (OSError, RuntimeError, ValueError):  # an unreadable vocal is reported where it is read
            continue
        if window.activity is not None and window.activity < LOW_ACTIVITY:
            quiet.append(f"{item.item_id} {window.activity:.0%}")
    if not quiet:
        return None
    shown = ", ".join(quiet[:5]) + (f" and {len(quiet) - 5} more" if len(quiet) > 5 else "")
    return (f"score: {len(quiet)} of {len(manifest.items)} vocal(s) are active in under {LOW_ACTIVITY:.0%} of the "
            f"seconds their eval file covers, from 0 s ({shown}): adherence reads the vocal from its start; if the "
            "eval files were made from a later window of the song, cut the vocals to that window")


def summary_lines(scores: dict[str, Any]) -> list[str]:
    """Every number of a scores.json, one line each: row, metric, mean [95% CI], n, and the clips outside n (their
    value not finite, e.g. -inf loudness and true peak of digital silence, with the registry's reason; or the metric
    failed on them). What the one-liner prints (Table I shows only its columns; signal metrics, for one, have none)."""
    from bench.scoring.registry import metric

    def cell(key: str, est: dict[str, Any]) -> str:
        found = metric(key)
        fmt = found[1].fmt if found else ".4g"
        low, high = est.get("ci_low"), est.get("ci_high")
        # as Table I's cells (reports.table1.estimate_cell): an interval with a NaN end (n = 1) is no interval
        has_ci = all(isinstance(v, int | float) and math.isfinite(v) for v in (low, high))
        ci = f" [{low:{fmt}}, {high:{fmt}}]" if has_ci else " (no CI)"
        return f"{est['value']:{fmt}}{ci}, n={est.get('n')}"

    def why(key: str) -> str:
        found = metric(key)
        return (found[1].undefined if found else "") or "undefined on each"

    lines = []
    # the accompaniment alone, then (--score-on mix|both) the vocal + accompaniment mix, kept apart in scores.json
    views = [("", scores), (" [mix]", scores.get("mix") or {})]
    for view, data in views:
        for model, entry in data.get("models", {}).items():
            label = f" ({entry['label']})" if entry.get("label") else ""
            per_clip = entry.get("per_clip", {})
            clips = [c for c in entry.get("clips", []) if isinstance(c.get("values"), dict)]
            for key, est in sorted(per_clip.items()):
                if isinstance(est, dict) and est.get("value") is not None:
                    lines.append(f"{model}{label}{view}  {key}  {cell(key, est)}"
                                 f"{_outside_n(key, clips, est.get('n_nonfinite'), why(key))}")
            # a metric computed on every clip yet finite on none has no estimate: said, not left out in silence
            for key in sorted({k for c in clips for k in c["values"]} - set(per_clip)):
                lines.append(f"{model}{label}{view}  {key}  no finite value on any of {len(clips)} clips "
                             f"({why(key)})")
            for embedder, values in sorted(entry.get("sets", {}).items()):
                for key, est in sorted(values.items()):
                    if isinstance(est, dict) and isinstance(est.get("value"), int | float):
                        lines.append(f"{model}{label}{view}  {key} ({embedder})  {cell('fad.' + key, est)}")
    crop = (scores.get("crop") or {}).get("summary") or {}
    if crop.get("n_cropped"):
        shortest = crop.get("cropped_min_s", crop["min_s"])  # a scores.json before cropped_min_s: over every item
        lines.append(f"crop: {crop['n_cropped']} of {crop['n_items']} item(s) scored on a shorter common window "
                     f"(the shortest {shortest:.2f} s; scores.json 'crop' says which and why)")
    lines += [f"note: {n}" for n in scores.get("notes", [])]
    return lines


def _outside_n(key: str, clips: list[dict[str, Any]], n_nonfinite: Any, why: str) -> str:
    """'; outside n: a, b (why)' for the clips whose value of ``key`` is not finite, and how many more the metric
    failed on (``n_nonfinite`` counts both); '' when every clip is in n."""
    if not isinstance(n_nonfinite, int) or n_nonfinite <= 0:
        return ""
    values = [(str(c.get("item_id")), c["values"][key]) for c in clips if key in c["values"]]
    ids = [item for item, v in values if not (isinstance(v, int | float) and math.isfinite(v))]
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    parts = [f"{shown} ({why})"] if ids else []
    if failed := n_nonfinite - len(ids):
        parts.append(f"{failed} clip(s) the metric failed on (scores.json's errors)")
    return "; outside n: " + "; ".join(parts)
