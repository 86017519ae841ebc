"""`samuel generate`: the CLI end to end, batches of good and bad files, resume, invariants, normalisation.

One test runs the real tiny random Oobleck VAE through the CLI (slow-marked: its encoder is 128 channels wide at
44.1 kHz, about 6 s per 64-frame chunk on a 2-core CPU). Everything else encodes with the stand-in
:class:`helpers.ProjectionCodec`, either passed to :class:`Accompanist` directly or put in place of
``OobleckCodec`` for the CLI. The model is the tiny SAMUeL preset (64-frame chunks of 2.97 s, 8 frames of
overlap) with its zero-initialised layers randomised, so its output depends on its input.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import ProjectionCodec

import samuel.generate
from samuel import SAMUeL, SAMUeLConfig
from samuel.audio import load_audio
from samuel.checkpoint import NORM_KEY, TRAINING_KEY, save_model
from samuel.chunking import HOP_LENGTH, SAMPLE_RATE, valid_frames
from samuel.cli import main
from samuel.codec import DEFAULT_CODEC, save_tiny_random_oobleck
from samuel.data import NormStats
from samuel.generate import (
    UNTRAINED_LABEL,
    Accompanist,
    GenerateSettings,
    chunk_seed,
    sidecar_path,
    training_codec_mismatch,
    vocal_tracks,
)
from samuel.generate_plan import plan_inputs, plan_jobs
from samuel.hashing import file_sha256
from samuel.model import fill_zero_init_layers

SR = 44_100
CHUNK = 64 * 2048  # the tiny preset's chunk: 131072 samples = 2.97 s
HOP = CHUNK - 8 * 2048  # chunks start every 56 frames (8 frames of overlap)
FAST = GenerateSettings(sampler="dpmpp", steps=3)
# Low-rate test files are deliberate; the warning is asserted where it matters.
pytestmark = pytest.mark.filterwarnings("ignore:.*upsampled to 44100 Hz:UserWarning")


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU is shared; one thread keeps runs predictable (and the tiny model gains nothing from two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------- fixtures


def _tiny_model() -> SAMUeL:
    torch.manual_seed(0)
    return fill_zero_init_layers(SAMUeL(SAMUeLConfig.tiny()), seed=0).eval()


@pytest.fixture(scope="module")
def model() -> SAMUeL:
    return _tiny_model()


def _norm_stats(seed: int = 0) -> NormStats:
    rng = np.random.default_rng(seed)
    return NormStats(vocal_mean=rng.normal(0, 0.5, 64).tolist(), vocal_std=rng.uniform(0.5, 2, 64).tolist(),
                     accomp_mean=rng.normal(0, 0.5, 64).tolist(), accomp_std=rng.uniform(0.5, 2, 64).tolist(),
                     n_items=10, source="test")


@pytest.fixture(scope="module")
def untrained_ckpt(tmp_path_factory, model) -> Path:
    """Random weights saved without a training record: must be labelled untrained."""
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "untrained.safetensors")


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, model) -> Path:
    """The same weights with the metadata `samuel train` writes: training-split statistics and a training record."""
    meta = {NORM_KEY: json.dumps(_norm_stats().to_dict()),
            TRAINING_KEY: json.dumps({"steps": 120, "ema": True, "data": "test"})}
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "trained.safetensors", extra_metadata=meta)


@pytest.fixture(scope="session")
def tiny_oobleck_dir(tmp_path_factory) -> Path:
    return save_tiny_random_oobleck(tmp_path_factory.mktemp("codec") / "tiny")


def _accompanist(model: SAMUeL, norm: NormStats | None = None, codec: ProjectionCodec | None = None) -> Accompanist:
    return Accompanist(model, codec or ProjectionCodec(), norm, checkpoint_info={"path": None, "trained": False})


@pytest.fixture
def stand_in_codec(monkeypatch) -> list[ProjectionCodec]:
    """Make `OobleckCodec.load` (as samuel.generate, and so the CLI, calls it) return a ProjectionCodec.

    Returns the list of codecs handed out, so a test can count their encode calls."""
    made: list[ProjectionCodec] = []

    def load(spec: Any, **kwargs: Any) -> ProjectionCodec:
        made.append(ProjectionCodec())
        return made[-1]

    monkeypatch.setattr(samuel.generate, "OobleckCodec", SimpleNamespace(load=load))
    return made


# ------------------------------------------------------------------------------------------------- test audio


def _vocal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A sung-note stand-in: a sine and its octave under a phrase envelope (sound, then rest), (frames, channels)."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = 220 * 2 ** (seed / 12)
    envelope = np.sqrt(np.clip(np.sin(2 * np.pi * 0.8 * t + 0.3), 0, None))
    x = 0.4 * envelope * (np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(4 * np.pi * f0 * t))
    gains = np.linspace(1.0, 0.6, channels)  # channels differ a little
    return (x[:, None] * gains).astype(np.float32)


def _wav(path: Path, seconds: float, rate: int = SR, channels: int = 1, seed: int = 0,
         subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _vocal(seconds, rate, channels, seed), rate, subtype=subtype)
    return path


def _frames(path: Path) -> tuple[int, int, int]:
    info = sf.info(str(path))
    return info.frames, info.channels, info.samplerate


def _read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32", always_2d=True)[0].T


def _sidecar(path: Path) -> dict:
    return json.loads(sidecar_path(path).read_text())


# Inputs of the batch test: name -> expected output length (ok) or the problem its error message must state.
GOOD = {"good.wav": 3 * SR, "long.wav": 600 * SR, "lowrate.wav": 2 * SR}
BAD = {
    "empty.wav": "is an empty file (0 bytes)",
    "nan.wav": "contains NaN samples at 1.500 s (frame 66150)",
    "notaudio.wav": "not a readable audio file (libsndfile:",
    "short.wav": "is 0.10 s long; the minimum is 1.00 s",
    "surround.wav": "has 6 channels; only mono or stereo is taken. Pass --downmix",
    "truncated.wav": "truncated: header declares 88200 frames, file holds",
}


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """Three usable files and six that are not, one problem each."""
    src = tmp_path_factory.mktemp("mixed")
    _wav(src / "good.wav", 3, SR, channels=2, seed=1)
    _wav(src / "long.wav", 600, 8000, seed=2)  # ten minutes of 8 kHz mono int16: 231 overlapping chunks
    _wav(src / "lowrate.wav", 2, 8000, seed=3)  # accepted and upsampled, with a warning
    (src / "notaudio.wav").write_text("these are lyrics, not audio\n" * 20)
    (src / "empty.wav").write_bytes(b"")
    cut = _wav(src / "truncated.wav", 2, SR, seed=4)
    cut.write_bytes(cut.read_bytes()[: 44 + 2 * 30_000])  # header declares 88200 frames; 30000 are left
    nan = _vocal(2, SR)
    nan[int(1.5 * SR)] = np.nan
    sf.write(str(src / "nan.wav"), nan, SR, subtype="FLOAT")
    _wav(src / "surround.wav", 1.5, 96_000, channels=6, seed=5)
    _wav(src / "short.wav", 0.1, SR, seed=6)
    return src


def _by_name(results: list) -> dict[str, Any]:
    names = [Path(r.input).name for r in results]
    assert len(names) == len(set(names)), f"an input was reported more than once: {names}"
    return dict(zip(names, results, strict=True))


# ------------------------------------------------------------------------------------------ end to end (CLI)


@pytest.mark.slow
def test_training_codec_mismatch_compares_the_weights_files_the_record_names() -> None:
    record = {"steps": 10, "data": {"codec": {"source": "stabilityai/stable-audio-open-1.0", "format": "diffusers",
                                              "weights_sha256": "a" * 64, "random_weights": False}}}
    assert training_codec_mismatch(record, {"source": "/x/vae", "weights_sha256": "a" * 64}) is None
    message = training_codec_mismatch(record, {"source": "/x/other", "weights_sha256": "b" * 64})
    assert message is not None and message.startswith("VAE MISMATCH")
    assert "stabilityai/stable-audio-open-1.0 (weights sha256 aaaaaaaaaaaa...)" in message
    assert "/x/other (sha256 bbbbbbbbbbbb...)" in message and "another file format" in message
    assert "unknown: no weights file" in training_codec_mismatch(record, {"source": "random", "weights_sha256": None})
    # records that do not say which VAE made the latents: POPDB data, checkpoints from before, no record at all
    for silent in (None, {"steps": 3}, {"data": {"codec": None}}, {"data": {"codec": {"weights_sha256": None}}},
                   "not a record"):
        assert training_codec_mismatch(silent, {"source": "/x/other", "weights_sha256": "b" * 64}) is None


def test_cli_names_a_vae_other_than_the_one_the_checkpoint_was_trained_with(tmp_path, model, tiny_oobleck_dir,
                                                                           capsys) -> None:
    """A checkpoint trained on one VAE's latents, run with another VAE, made meaningless audio without a word. Its
    training record (from `samuel prepare`'s manifest) names the VAE; a mismatch is said on stderr and in the
    sidecar. The codec here has random weights, so its own label is said too."""
    vocals = tmp_path / "vocals.wav"
    sf.write(str(vocals), _vocal(2, 22_050)[:, 0], 22_050, subtype="PCM_16")
    ours = file_sha256(tiny_oobleck_dir / "diffusion_pytorch_model.safetensors")

    def trained_on(sha: str, name: str) -> Path:
        record = {"steps": 5, "data": {"codec": {"source": "/data/vae", "format": "diffusers",
                                                 "weights_sha256": sha, "random_weights": False}}}
        meta = {NORM_KEY: json.dumps(_norm_stats().to_dict()), TRAINING_KEY: json.dumps(record)}
        return save_model(model, tmp_path / name, extra_metadata=meta)

    for ckpt, mismatch in ((trained_on("c" * 64, "other.safetensors"), True),
                           (trained_on(ours, "same.safetensors"), False)):
        out = tmp_path / f"{ckpt.stem}.wav"
        assert main(["generate", str(vocals), "-o", str(out), "--checkpoint", str(ckpt), "--codec",
                     str(tiny_oobleck_dir), "--steps", "2", "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert "!! RANDOM CODEC" in err
        record = _sidecar(out)
        if mismatch:
            assert f"!! VAE MISMATCH: the checkpoint was trained on latents of /data/vae (weights sha256 cccccccccccc" \
                   f"...), but this run's VAE is {tiny_oobleck_dir} (sha256 {ours[:12]}...)" in err
            assert record["codec_mismatch"].startswith("VAE MISMATCH") and record["label"].startswith("RANDOM CODEC")
        else:
            assert "MISMATCH" not in err and record["codec_mismatch"] is None


def test_cli_end_to_end_with_the_real_tiny_codec(tmp_path, untrained_ckpt, tiny_oobleck_dir, capsys):
    vocals = tmp_path / "vocals.wav"
    sf.write(str(vocals), _vocal(3, 22_050)[:, 0], 22_050, subtype="PCM_16")  # 3 s, 22.05 kHz mono
    out, mix = tmp_path / "out.wav", tmp_path / "mix.wav"
    code = main(["generate", str(vocals), "-o", str(out), "--checkpoint", str(untrained_ckpt),
                 "--codec", str(tiny_oobleck_dir), "--sampler", "dpmpp", "--steps", "3", "--mix", str(mix),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert UNTRAINED_LABEL in captured.err and str(untrained_ckpt) in captured.err
    assert "generate: 1 written, 0 skipped, 0 failed" in captured.out

    loaded = load_audio(vocals).samples  # the input as the pipeline sees it: 44.1 kHz stereo
    assert loaded.shape == (2, 3 * SR)
    assert _frames(out) == (3 * SR, 2, SR) and _frames(mix) == (3 * SR, 2, SR)
    accompaniment = _read(out)
    assert np.isfinite(accompaniment).all() and np.abs(accompaniment).max() > 0
    np.testing.assert_allclose(_read(mix), loaded + accompaniment, rtol=0, atol=1e-6)

    record = _sidecar(out)
    assert record["weights"] == "untrained" and record["label"] == UNTRAINED_LABEL
    assert record["input"] == str(vocals) and record["output"] == str(out) and record["mix"] == str(mix)
    assert record["input_audio"] == {"rate": 22_050, "channels": 1, "frames": 66_150, "seconds": 3.0}
    assert record["chunks"]["n"] == 2 and record["chunks"]["starts"] == [0, HOP]  # 3 s > one 2.97 s chunk
    assert record["chunks"]["chunk_samples"] == CHUNK and record["chunks"]["overlap_samples"] == 8 * 2048
    assert record["seeds"] == [chunk_seed(0, "vocals.wav", k) for k in range(2)]
    assert record["settings"] == {"sampler": "dpmpp", "steps": 3, "guidance": 3.0, "seed": 0,
                                  "spacing": "quadratic", "batch_size": 4, "overlap_frames": None,
                                  "downmix": False}
    codec = record["codec"]
    assert codec["codec"] == "oobleck" and codec["random_weights"] is True
    assert record["codec_weights"] == "random"
    assert codec["source"] == str(tiny_oobleck_dir) and codec["weights_sha256"]
    ckpt = record["checkpoint"]
    assert ckpt["trained"] is False and ckpt["training"] is None and ckpt["path"] == str(untrained_ckpt)
    assert ckpt["sha256"] == hashlib.sha256(untrained_ckpt.read_bytes()).hexdigest()
    assert ckpt["normalisation"] == "none (identity)"
    assert set(record["timings"]) == {"load_s", "encode_s", "sample_s", "decode_s", "write_s"}
    assert all(v >= 0 for v in record["timings"].values()) and record["timings"]["encode_s"] > 0
    assert record["device"] == "cpu" and record["precision"] == "fp32" and record["versions"]["torch"]


# ---------------------------------------------------------------------------------------- batches of files


def test_a_tree_of_songs_kept_as_stems_is_read_by_song(tmp_path, model):
    """`samuel generate musdb/test -o OUT` said "directory holds no files", and `samuel generate "Song A"` (a song
    folder) made an accompaniment for its drums, bass and mixture too. A song folder now gives one output named after
    the song from its vocals file; a MoisesDB song from the sum of its vocals folder's tracks; plain files in
    subfolders keep their paths; the output names are what samuel-eval's outputs: rows match songs by."""
    from samuel.audio import load_tracks_sum

    rng = np.random.default_rng(11)

    def write(path: Path, seconds: float = 2.0) -> np.ndarray:
        path.parent.mkdir(parents=True, exist_ok=True)
        x = (0.1 * rng.standard_normal((int(SAMPLE_RATE * seconds), 2))).astype(np.float32)
        sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
        return x

    tree, out = tmp_path / "tree", tmp_path / "out"
    for stem in ("vocals", "drums", "bass", "other", "mixture"):
        write(tree / "test" / "Song A" / f"{stem}.wav")
    song = tree / "moises" / "1f"
    lead, backing = write(song / "vocals" / "a.wav"), write(song / "vocals" / "b.wav")
    write(tree / "moises" / "1f" / "guitar" / "g.wav")
    write(tree / "loose" / "take 1.wav")
    jobs = plan_jobs(tree, out, tmp_path / "mix")
    assert [(src.relative_to(tree).as_posix(), dst.relative_to(out).as_posix()) for src, dst, *_ in jobs] == [
        ("loose/take 1.wav", "loose/take 1.accompaniment.wav"),
        ("moises/1f/vocals", "moises/1f.accompaniment.wav"),
        ("test/Song A/vocals.wav", "test/Song A.accompaniment.wav")]
    assert jobs[1][2] == tmp_path / "mix" / "moises" / "1f.mix.wav"
    from samuel.generate import _seed_key  # songs' vocals files share a name; their seeds must not

    assert _seed_key(jobs[2][0], jobs[2][1]) == "Song A.accompaniment.wav" and _seed_key(jobs[0][0], jobs[0][1]) == (
        "take 1.wav") and _seed_key(tree / "vocals.wav", tmp_path / "out.wav") == "vocals.wav"
    assert [job.seed_key for job in jobs] == [  # the path below the input folder
        "loose/take 1.wav", "moises/1f.accompaniment.wav", "test/Song A.accompaniment.wav"]
    assert plan_jobs(tree / "test" / "Song A", out, None) == [
        (tree / "test" / "Song A" / "vocals.wav", out / "Song A.accompaniment.wav", None, "Song A.accompaniment.wav")]
    summed = load_tracks_sum(vocal_tracks(jobs[1][0]))
    np.testing.assert_allclose(summed.samples, (lead + backing).T, atol=1e-6)
    flat = tmp_path / "flat"  # a folder of vocals, one of them named vocals.wav, is no song folder
    write(flat / "vocals.wav")
    write(flat / "song2.wav")
    assert [src.name for src, *_ in plan_jobs(flat, out, None)] == ["song2.wav", "vocals.wav"]
    acc = _accompanist(model, codec=ProjectionCodec())
    results = acc.run(jobs, GenerateSettings(steps=2), progress=False)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert all(dst.is_file() for _, dst, *_ in jobs)
    again = acc.run(jobs, GenerateSettings(steps=2), progress=False)
    assert [r.status for r in again] == ["skipped"] * 3  # the summed input's sha256 covers both tracks
    write(tree / "moises" / "1f" / "vocals" / "b.wav")  # a track changed: that song's output is stale, named
    changed = acc.run(jobs, GenerateSettings(steps=2), progress=False)
    assert [r.status for r in changed] == ["skipped", "error", "skipped"] and "exists but" in changed[1].message


def test_every_file_under_a_folder_is_an_input_or_named_with_why(tmp_path, untrained_ckpt, stand_in_codec, capsys):
    """Each of these used to end "N written, 0 failed" without a word of the files left out: a folder with
    `take 1.wav`, `take 2.wav`, `voice.wav` and `mix.wav` gave one output, from voice.wav; a folder with files of
    its own ignored its subfolders; a dangling link was not listed. Now every folder is read by the same rule, and
    each file is an input or named with why it is none; a dangling link is a failure."""
    root, out = tmp_path / "in", tmp_path / "out"
    for name in ("top.flac", "sub/a.wav", "sub/deeper/b.wav", "takes/take 1.wav", "takes/take 2.wav",
                 "takes/voice.wav", "takes/mix.wav"):
        _wav(root / name, 1.5)
    (root / "x.wav").symlink_to(tmp_path / "gone.wav")
    plan = plan_inputs(root, out, None)
    assert [(src.relative_to(root).as_posix(), dst.relative_to(out).as_posix()) for src, dst, *_ in plan.jobs] == [
        ("top.flac", "top.accompaniment.wav"), ("sub/a.wav", "sub/a.accompaniment.wav"),
        ("sub/deeper/b.wav", "sub/deeper/b.accompaniment.wav"), ("takes/voice.wav", "takes.accompaniment.wav")]
    assert [(n.path.name, n.kind) for n in plan.not_inputs] == [
        ("mix.wav", "stem"), ("take 1.wav", "beside a song"), ("take 2.wav", "beside a song")]
    assert plan.broken == [(root / "x.wav", f"{root / 'x.wav'}: is a link to {tmp_path / 'gone.wav'}, which does "
                                            "not exist")]

    assert main(["generate", str(root), "-o", str(out), "--checkpoint", str(untrained_ckpt), "--codec", "stand-in",
                 "--steps", "2", "--no-progress"]) == 1  # the dangling link failed
    captured = capsys.readouterr()
    why = (f"not read  {root / 'takes' / 'take 1.wav'}: {root / 'takes'} is read as one song, as its files include a "
           "vocals file (voice.wav) and other stems (mix.wav); take 1.wav is named as no stem, so it is not read: "
           "move it to a folder of its own to generate for it")
    assert why in captured.out and f"not read  {root / 'takes' / 'take 2.wav'}: " in captured.out
    assert ("plan: 4 inputs; 2 audio files beside a song's stems not read (named above); 1 other stem of songs not "
            "read (mix: a song's input is its vocals)") in captured.out
    assert f"error   {root / 'x.wav'}: is a link to" in captured.err
    assert "generate: 4 written, 0 skipped, 1 failed" in captured.out
    assert all(dst.is_file() for _, dst, *_ in plan.jobs)


def test_folder_with_bad_files(tmp_path, mixed_folder, model):
    out = tmp_path / "out"
    codec = ProjectionCodec()
    acc = _accompanist(model, codec=codec)
    jobs = plan_jobs(mixed_folder, out, None)
    assert [src.name for src, *_ in jobs] == sorted([*GOOD, *BAD])
    seen: list[str] = []
    with pytest.warns(UserWarning, match=r"lowrate\.wav: sample rate is 8000 Hz; upsampled to 44100 Hz"):
        results = acc.run(jobs, GenerateSettings(steps=3, batch_size=64), progress=False,
                          on_result=lambda r: seen.append(r.input))
    assert seen == [r.input for r in results]  # the callback sees every result, as it comes
    # Results come in the order they are settled: an error at once, an output when its last chunk has been
    # sampled (batches of 64 chunks: good.wav's 2 ride in the first batch with 62 of long.wav's 231).
    assert [Path(r.input).name for r in results] == ["empty.wav", "good.wav", "nan.wav", "notaudio.wav",
                                                     "short.wav", "surround.wav", "truncated.wav", "long.wav",
                                                     "lowrate.wav"]
    by_name = _by_name(results)
    assert set(by_name) == set(GOOD) | set(BAD)  # the run went on past every bad file

    for name, problem in BAD.items():
        result = by_name[name]
        assert result.status == "error" and result.output is None, name
        assert result.message.startswith(f"{mixed_folder / name}: "), result.message  # names its file ...
        assert problem in result.message, result.message  # ... and the problem
        assert not (out / f"{Path(name).stem}.accompaniment.wav").exists()
    # bad files fail before encoding, so no VAE time is spent on them: one encode call per good file, in order
    assert codec.calls == [(2, 2, CHUNK), (231, 2, CHUNK), (1, 2, CHUNK)]

    for name, length in GOOD.items():
        result = by_name[name]
        wav = out / f"{Path(name).stem}.accompaniment.wav"
        assert result.status == "ok" and result.output == str(wav) and result.message is None
        assert result.seconds == pytest.approx(length / SR)
        assert _frames(wav) == (length, 2, SR), name  # the input's length, exactly
        record = _sidecar(wav)
        assert record["input"] == str(mixed_folder / name) and record["weights"] == "untrained"
        assert record["chunks"]["n"] == len(record["seeds"]) == max(1, 1 + -(-(length - CHUNK) // HOP))
    long = _read(out / "long.accompaniment.wav")
    assert np.isfinite(long).all()
    assert _sidecar(out / "long.accompaniment.wav")["chunks"]["starts"] == [k * HOP for k in range(231)]
    spans = [long[:, k * HOP : (k + 1) * HOP] for k in range(230)] + [long[:, 230 * HOP :]]  # one per chunk
    assert min(np.sqrt(np.mean(span**2)) for span in spans) > 1e-3  # every chunk's span holds generated audio

    # Again with downmix: the finished outputs are skipped, the 5.1 file now works, the rest still fail.
    results = _by_name(acc.run(jobs, GenerateSettings(steps=3, batch_size=64, downmix=True), progress=False))
    assert {n for n, r in results.items() if r.status == "skipped"} == set(GOOD)
    assert {n for n, r in results.items() if r.status == "ok"} == {"surround.wav"}
    assert {n for n, r in results.items() if r.status == "error"} == set(BAD) - {"surround.wav"}
    assert all(str(mixed_folder / n) in results[n].message for n in GOOD)  # the skip message names the file
    assert _frames(out / "surround.accompaniment.wav") == (round(1.5 * SR), 2, SR)
    assert _sidecar(out / "surround.accompaniment.wav")["input_audio"]["channels"] == 6
    assert codec.calls[3:] == [(1, 2, CHUNK)]  # only the 5.1 file was encoded this time


def test_cli_folder_with_bad_files_exits_1_and_writes_the_good_ones(tmp_path, mixed_folder, trained_ckpt,
                                                                    stand_in_codec, capsys):
    out = tmp_path / "out"
    argv = ["generate", str(mixed_folder), "-o", str(out), "--checkpoint", str(trained_ckpt), "--codec", "stand-in",
            "--steps", "3", "--batch-size", "64", "--no-progress"]
    assert main(argv) == 1  # some failed
    captured = capsys.readouterr()
    assert "generate: 3 written, 0 skipped, 6 failed" in captured.out
    for name in GOOD:
        wav = out / f"{Path(name).stem}.accompaniment.wav"
        assert _frames(wav)[0] == GOOD[name] and f"{mixed_folder / name} -> {wav}" in captured.out
        record = _sidecar(wav)  # a checkpoint with a training record is not labelled
        assert record["weights"] == "trained" and record["label"] is None
        assert record["checkpoint"]["normalisation"] == "training-split statistics"
        assert record["checkpoint"]["training"]["steps"] == 120
    for name, problem in BAD.items():
        assert f"{mixed_folder / name}: " in captured.err and problem in captured.err, name
    assert "UNTRAINED" not in captured.err
    assert len(stand_in_codec[0].calls) == 3  # one encode call per good file; the bad ones never reach the codec

    assert main(argv) == 1  # resumed: the good outputs are skipped, without encoding anything
    assert "generate: 0 written, 3 skipped, 6 failed" in capsys.readouterr().out
    assert stand_in_codec[1].calls == []


def test_resume_skips_finished_outputs_and_overwrite_redoes_them(tmp_path, model):
    src, out = tmp_path / "src", tmp_path / "out"
    _wav(src / "a.wav", 3, seed=1)
    _wav(src / "b.wav", 1.5, seed=2)
    codec = ProjectionCodec()
    acc = _accompanist(model, codec=codec)
    jobs = plan_jobs(src, out, tmp_path / "mix")
    first = acc.run(jobs, FAST, progress=False)
    assert [r.status for r in first] == ["ok", "ok"] and len(codec.calls) == 2
    audio = {p.name: _read(p) for p in out.glob("*.wav")}
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}  # a rewrite is a new inode

    second = acc.run(jobs, FAST, progress=False)
    assert [r.status for r in second] == ["skipped", "skipped"] and len(codec.calls) == 2
    assert [r.output for r in second] == [str(out / "a.accompaniment.wav"), str(out / "b.accompaniment.wav")]
    assert all("--overwrite" in r.message for r in second)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()} == stamps  # none rewritten

    sidecar_path(out / "b.accompaniment.wav").unlink()  # audio without a sidecar: not ours (ours always has one)
    third = acc.run(jobs, FAST, progress=False)
    assert [r.status for r in third] == ["skipped", "error"] and len(codec.calls) == 2
    assert "has no sidecar" in third[1].message and "--overwrite" in third[1].message

    fourth = acc.run(jobs, FAST, overwrite=True, progress=False)
    assert [r.status for r in fourth] == ["ok", "ok"] and len(codec.calls) == 4
    for name, before in audio.items():
        np.testing.assert_array_equal(_read(out / name), before)  # redone, and the same (same seeds)
    assert (out / "a.accompaniment.wav").stat().st_ino != stamps["a.accompaniment.wav"][0]  # really rewritten


def test_rerun_keeps_only_outputs_it_can_check(tmp_path, model):
    """A rerun into an old folder: an output is skipped only when its sidecar says it was made from this input with
    these settings and weights and its files are the ones written; a stale one is named and left alone, a torn one
    (cut short, changed, its requested mix missing, an unreadable sidecar) is redone."""
    src, out, mix = tmp_path / "src", tmp_path / "out", tmp_path / "mix"
    _wav(src / "a.wav", 1.5, seed=1)
    codec = ProjectionCodec()
    acc = _accompanist(model, codec=codec)
    jobs = plan_jobs(src, out, mix)
    wav, side = out / "a.accompaniment.wav", sidecar_path(out / "a.accompaniment.wav")
    assert [r.status for r in acc.run(jobs, FAST, progress=False)] == ["ok"]
    first, record = _read(wav), _sidecar(wav)
    assert record["files"]["output"] == {"path": str(wav), "bytes": wav.stat().st_size,
                                         "sha256": file_sha256(wav), "frames": round(1.5 * 44_100)}
    assert record["files"]["mix"]["sha256"] == file_sha256(mix / "a.mix.wav")
    assert record["made_with"]["input_sha256"] == file_sha256(src / "a.wav")
    assert record["made_with"]["settings"]["steps"] == 3 and "batch_size" not in record["made_with"]["settings"]

    def rerun(settings=FAST, jobs=jobs, **kw):
        calls = len(codec.calls)
        [result] = acc.run(jobs, settings, progress=False, **kw)
        return result, len(codec.calls) - calls

    result, encoded = rerun(GenerateSettings(sampler="dpmpp", steps=3, batch_size=7, downmix=True))
    assert (result.status, encoded) == ("skipped", 0)  # batch size and downmix do not change an output

    stamp = wav.stat().st_mtime_ns
    result, encoded = rerun(GenerateSettings(sampler="dpmpp", steps=3, seed=5))
    assert (result.status, encoded) == ("error", 0) and result.output == str(wav)
    assert "made with seed 0 (this run: 5)" in result.message and "--overwrite" in result.message
    assert wav.stat().st_mtime_ns == stamp  # a stale output is named and kept, never overwritten without asking

    data, rate = sf.read(str(wav), always_2d=True)  # edited in place (whole audio, other bytes): kept, named
    sf.write(str(wav), data * 0.5, rate, subtype="FLOAT")
    edited = wav.read_bytes()
    result, encoded = rerun()
    assert (result.status, encoded) == ("error", 0) and "another sha256 than the one written" in result.message
    assert "changed since, perhaps edited" in result.message and "--overwrite" in result.message
    assert wav.read_bytes() == edited  # a file someone else changed is never overwritten without asking
    sf.write(str(wav), np.concatenate([data, data]), rate, subtype="PCM_16")  # longer, in another format: the same
    result, encoded = rerun()
    assert (result.status, encoded) == ("error", 0) and "changed since" in result.message
    result, encoded = rerun(overwrite=True)
    assert (result.status, encoded) == ("ok", 1)
    np.testing.assert_array_equal(_read(wav), first)

    with open(wav, "r+b") as f:  # cut short (a copy that stopped): redone, and said
        f.truncate(wav.stat().st_size // 2)
    result, encoded = rerun()
    assert (result.status, encoded) == ("ok", 1) and str(wav) in result.message
    assert "frames, 66150 written" in result.message
    np.testing.assert_array_equal(_read(wav), first)
    wav.write_bytes(b"RIFF")  # not audio at all: redone
    result, encoded = rerun()
    assert (result.status, encoded) == ("ok", 1) and "not readable as audio" in result.message

    result, encoded = rerun(jobs=plan_jobs(src, out, tmp_path / "mix2"))  # a mix this run asks for is missing
    assert (result.status, encoded) == ("ok", 1) and "lacks its mix file" in result.message
    assert (tmp_path / "mix2" / "a.mix.wav").is_file()

    side.write_text('{"made_with": ')  # a torn sidecar
    result, encoded = rerun(jobs=plan_jobs(src, out, None))
    assert (result.status, encoded) == ("ok", 1) and "unreadable sidecar" in result.message
    result, encoded = rerun(jobs=plan_jobs(src, out, mix))  # written without a mix; the mix path holds one: whose?
    assert (result.status, encoded) == ("error", 0) and f"the mix path {mix / 'a.mix.wav'} holds a file" in (
        result.message)
    (mix / "a.mix.wav").unlink()
    result, encoded = rerun(jobs=plan_jobs(src, out, mix))  # written without a mix; this run asks for one
    assert (result.status, encoded) == ("ok", 1) and "was written without the mix" in result.message
    (mix / "a.mix.wav").unlink()  # a stale output stays stale, whatever else is missing
    result, encoded = rerun(GenerateSettings(sampler="dpmpp", steps=4), jobs=plan_jobs(src, out, mix))
    assert (result.status, encoded) == ("error", 0) and "with steps 3 (this run: 4)" in result.message
    side.write_text(json.dumps({"output": str(wav), "pending": "..."}))  # stopped before the full record: redone
    result, encoded = rerun(jobs=plan_jobs(src, out, None))
    assert (result.status, encoded) == ("ok", 1) and "was being written when a run stopped" in result.message
    # the crossfade stored resolved: the default and the same overlap given explicitly are one output
    default_overlap = _sidecar(wav)["made_with"]["settings"]["overlap_frames"]
    assert isinstance(default_overlap, int)
    result, _ = rerun(GenerateSettings(sampler="dpmpp", steps=3, overlap_frames=default_overlap),
                      jobs=plan_jobs(src, out, None))
    assert result.status == "skipped"
    precise = _sidecar(wav)
    precise["made_with"]["precision"] = "bf16"
    side.write_text(json.dumps(precise))
    result, encoded = rerun(jobs=plan_jobs(src, out, None))
    assert (result.status, encoded) == ("error", 0) and "in bf16 (this run: fp32)" in result.message
    side.write_text(json.dumps(_sidecar(wav) | {"made_with": precise["made_with"] | {"precision": "fp32"}}))

    older = _sidecar(wav)  # a sidecar from before the checks: named, not trusted
    del older["made_with"], older["files"]
    side.write_text(json.dumps(older))
    result, encoded = rerun(jobs=plan_jobs(src, out, None))
    assert (result.status, encoded) == ("error", 0) and "older samuel-bench" in result.message

    _wav(src / "a.wav", 1.5, seed=2)  # another vocal under the same name
    result, encoded = rerun(jobs=plan_jobs(src, out, None), overwrite=True)
    assert (result.status, encoded) == ("ok", 1) and result.message is None
    _wav(src / "a.wav", 1.5, seed=1)
    result, encoded = rerun(jobs=plan_jobs(src, out, None))
    assert (result.status, encoded) == ("error", 0) and "from another input file" in result.message


def test_a_rerun_into_the_input_folder_never_reads_its_own_outputs(tmp_path, untrained_ckpt, stand_in_codec,
                                                                    capsys):
    """`generate inplace -o inplace` twice made s1.accompaniment.accompaniment.wav from its own earlier output, and
    the file count grew with every rerun. Files whose samuel sidecar names them as an output or a mix are no input;
    the plan line counts them. A mix written into the input while the outputs (and sidecars) went elsewhere is
    known too, from the output folder's sidecars."""
    inplace, elsewhere = tmp_path / "inplace", tmp_path / "elsewhere"
    _wav(inplace / "s1.wav", 1.5, seed=1), _wav(inplace / "s2.wav", 1.5, seed=2)

    def generate(out: Path, mix: Path) -> str:
        assert main(["generate", str(inplace), "-o", str(out), "--mix", str(mix), "--checkpoint",
                     str(untrained_ckpt), "--codec", "stand-in", "--steps", "2", "--no-progress"]) == 0
        return capsys.readouterr().out

    assert "generate: 2 written, 0 skipped, 0 failed" in generate(inplace, inplace)
    files = sorted(p.name for p in inplace.iterdir())
    again = generate(inplace, inplace)
    assert "plan: 2 inputs; 4 earlier outputs of samuel generate skipped (never inputs)" in again
    assert "generate: 0 written, 2 skipped, 0 failed" in again
    assert sorted(p.name for p in inplace.iterdir()) == files  # nothing new: no output of an output
    assert not list(inplace.glob("*.accompaniment.accompaniment.wav"))

    generate(elsewhere, inplace / "mixes")  # outputs and their sidecars outside the input, the mixes inside it
    rerun = generate(elsewhere, inplace / "mixes")
    assert "plan: 2 inputs; 6 earlier outputs of samuel generate skipped" in rerun and "0 written, 2 skipped" in rerun


def test_cli_stops_on_a_full_disk_with_one_line(tmp_path, mixed_folder, trained_ckpt, stand_in_codec, monkeypatch,
                                                capsys):
    """A full disk is no file's fault: each output failed alone as "LibsndfileError: System error." and the run
    went on. Now the first failed write stops it with one line naming the file; the rerun resumes."""
    import errno

    from samuel.atomic import DiskFull

    def full(path, *args, **kwargs):
        raise DiskFull(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(samuel.generate, "write_audio", full)
    out = tmp_path / "out"
    argv = ["generate", str(mixed_folder), "-o", str(out), "--checkpoint", str(trained_ckpt), "--codec", "stand-in",
            "--steps", "2", "--batch-size", "1", "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if "no space left" in x]
    assert len(lines) == 1 and lines[0].startswith(f"samuel generate: no space left on the device writing {out}")
    assert "generate:" not in captured.out  # no summary of a run that did not finish
    assert len(stand_in_codec[0].calls) == 1  # stopped after the first file


def test_cli_resume_and_overwrite(tmp_path, untrained_ckpt, stand_in_codec, capsys):
    vocals, out = _wav(tmp_path / "v.wav", 1.5), tmp_path / "out.wav"
    argv = ["generate", str(vocals), "-o", str(out), "--checkpoint", str(untrained_ckpt), "--codec", "stand-in",
            "--steps", "2", "--no-progress"]
    assert main(argv) == 0
    assert "generate: 1 written, 0 skipped, 0 failed" in capsys.readouterr().out
    first = _read(out)
    assert main(argv) == 0  # nothing to do is not a failure
    stdout = capsys.readouterr().out
    assert "generate: 0 written, 1 skipped, 0 failed" in stdout and f"{vocals}: {out} exists" in stdout
    assert main([*argv, "--overwrite"]) == 0
    assert "generate: 1 written, 0 skipped, 0 failed" in capsys.readouterr().out
    assert [len(c.calls) for c in stand_in_codec] == [1, 0, 1]
    np.testing.assert_array_equal(_read(out), first)


def test_ctrl_c_keeps_finished_outputs_says_so_in_one_line_and_the_rerun_resumes(tmp_path, untrained_ckpt,
                                                                                  stand_in_codec, capsys,
                                                                                  monkeypatch):
    # defect: Ctrl-C printed a traceback from inside the codec and said nothing of what was kept
    vocals, out = tmp_path / "vocals", tmp_path / "out"
    vocals.mkdir()
    _wav(vocals / "a.wav", 1.5), _wav(vocals / "b.wav", 1.5, seed=1)
    argv = ["generate", str(vocals), "-o", str(out), "--checkpoint", str(untrained_ckpt), "--codec", "stand-in",
            "--steps", "2", "--no-progress"]
    decode = ProjectionCodec.decode

    def decode_then_ctrl_c(self, latents, keep_frames=None):
        if self.decode_calls:  # the second file's decode: Ctrl-C
            raise KeyboardInterrupt
        return decode(self, latents, keep_frames)

    monkeypatch.setattr(ProjectionCodec, "decode", decode_then_ctrl_c)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "samuel: interrupted" in err and "rerun the same command" in err
    assert sorted(p.name for p in out.glob("*.wav")) == ["a.accompaniment.wav"]  # the finished one, whole
    monkeypatch.setattr(ProjectionCodec, "decode", decode)
    assert main(argv) == 0
    assert "generate: 1 written, 1 skipped, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.wav")) == ["a.accompaniment.wav", "b.accompaniment.wav"]


def test_two_inputs_with_one_output_name(tmp_path, model):
    # song.flac and song.wav would both write song.accompaniment.wav: refused before any work, both named
    src, out = tmp_path / "src", tmp_path / "out"
    _wav(src / "song.wav", 1.5, seed=1)
    sf.write(str(src / "song.flac"), _vocal(1.5, SR, seed=2), SR)
    with pytest.raises(ValueError, match="nothing was run") as refused:
        plan_jobs(src, out, None)
    assert f"{out / 'song.accompaniment.wav'} would be written twice: as the output of {src / 'song.flac'} and " \
           f"as the output of {src / 'song.wav'}; rename one of the two inputs" in str(refused.value)
    jobs = [(src / name, out / "song.accompaniment.wav", None) for name in ("song.flac", "song.wav")]
    codec = ProjectionCodec()
    with pytest.raises(ValueError, match="would be written twice"):  # the library refuses such jobs too
        _accompanist(model, codec=codec).run(jobs, FAST, progress=False)
    assert codec.calls == [] and not out.exists()


def test_generate_never_overwrites_its_input_or_a_file_it_did_not_write(tmp_path, untrained_ckpt, stand_in_codec,
                                                                        capsys):
    """`generate victim.wav -o victim.wav` replaced the vocal by its accompaniment, `-o x.wav --mix x.wav` wrote the
    mix over the accompaniment, and `generate song/vocals.wav -o song/accompaniment.wav` replaced the true stem
    ("redone: ... has no sidecar"). An output or mix path that is an input, or one path written twice, is refused
    before any work (exit 2), --overwrite or not; a file without our sidecar at an output or mix path is kept and
    named unless --overwrite."""
    song = tmp_path / "song"
    vocals, stem = _wav(song / "vocals.wav", 1.5, seed=1), _wav(song / "accompaniment.wav", 1.5, seed=2)
    link = tmp_path / "link.wav"
    link.symlink_to(vocals)
    before = {p: p.read_bytes() for p in (vocals, stem)}

    def generate(*argv: str) -> int:
        return main(["generate", *argv, "--checkpoint", str(untrained_ckpt), "--codec", "stand-in", "--steps", "2",
                     "--no-progress"])

    for argv, problem in ((["-o", str(vocals)], f"the output {vocals} of {vocals} is the input"),
                          (["-o", str(link), "--overwrite"], f"the output {link} of {vocals} is the input"),
                          (["-o", str(tmp_path / "x.wav"), "--mix", str(vocals)], f"the mix {vocals} of"),
                          (["-o", str(tmp_path / "x.wav"), "--mix", str(tmp_path / "x.wav")],
                           f"{tmp_path / 'x.wav'} would be written twice: as the output of {vocals} and as the mix")):
        assert generate(str(vocals), *argv) == 2, argv
        err = capsys.readouterr().err
        assert "samuel generate: nothing was run: " in err and problem in err, err
    assert stand_in_codec == [] and not (tmp_path / "x.wav").exists()  # refused before the model was loaded

    assert generate(str(vocals), "-o", str(stem)) == 1  # the song's true stem: not ours, so kept and named
    captured = capsys.readouterr()
    assert f"{stem} exists and has no sidecar" in captured.err and "--overwrite" in captured.err
    assert "generate: 0 written, 0 skipped, 1 failed" in captured.out
    assert {p: p.read_bytes() for p in (vocals, stem)} == before and not sidecar_path(stem).exists()
    mix = _wav(tmp_path / "mix.wav", 1.5, seed=3)  # a file of the user's at the mix path: kept as well
    assert generate(str(vocals), "-o", str(tmp_path / "new.wav"), "--mix", str(mix)) == 1
    assert f"its mix path {mix} holds a file that samuel generate did not write" in capsys.readouterr().err
    assert not (tmp_path / "new.wav").exists()
    assert generate(str(vocals), "-o", str(stem), "--overwrite") == 0  # asked for: replaced
    assert stem.read_bytes() != before[stem] and sidecar_path(stem).is_file()


def test_a_run_stopped_between_the_audio_and_its_sidecar_is_redone(tmp_path, model, monkeypatch):
    """The sidecar is written twice: a pending record before the audio, the full one after it and the mix. A run
    stopped in between leaves the pending record, so the rerun knows the audio is its own and unfinished."""
    src, out, mix = _wav(tmp_path / "a.wav", 1.5), tmp_path / "a.out.wav", tmp_path / "a.mix.wav"
    acc = _accompanist(model)
    file_entry = samuel.generate._file_entry

    def stop(path):  # called after both audio files are written, before the full sidecar
        raise KeyboardInterrupt

    monkeypatch.setattr(samuel.generate, "_file_entry", stop)
    with pytest.raises(KeyboardInterrupt):
        acc.run([(src, out, mix)], FAST, progress=False)
    assert out.is_file() and mix.is_file() and _sidecar(out)["pending"]
    monkeypatch.setattr(samuel.generate, "_file_entry", file_entry)
    [result] = acc.run([(src, out, mix)], FAST, progress=False)
    assert result.status == "ok" and "was being written when a run stopped" in result.message
    assert "pending" not in _sidecar(out) and _sidecar(out)["files"]["mix"]["sha256"] == file_sha256(mix)


# --------------------------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize(("sampler", "steps"), [("dpmpp", 3), ("ddpm", 4)])
def test_a_batch_equals_each_item_alone(model, sampler, steps):
    # ddpm draws fresh noise at every step: per-item generators are what makes an item independent of its batch
    acc = _accompanist(model)
    settings = GenerateSettings(sampler=sampler, steps=steps)
    vocal = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(5))
    seeds = [11, 22, 33]
    batch = acc.sample_latents(vocal, seeds, settings)
    assert batch.shape == (3, 64, 64) and batch.dtype == torch.float32 and torch.isfinite(batch).all()
    for i, seed in enumerate(seeds):
        alone = acc.sample_latents(vocal[i : i + 1], [seed], settings)
        torch.testing.assert_close(batch[i : i + 1], alone, rtol=0, atol=1e-5)
    reordered = acc.sample_latents(vocal[[2, 0, 1]], [33, 11, 22], settings)
    torch.testing.assert_close(reordered, batch[[2, 0, 1]], rtol=0, atol=1e-5)
    other_seed = acc.sample_latents(vocal[:1], [12], settings)
    assert (other_seed - batch[:1]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="one seed per item"):
        acc.sample_latents(vocal, seeds[:2], settings)


def test_outputs_do_not_depend_on_batch_size_and_follow_the_seed(tmp_path, model, monkeypatch):
    src = tmp_path / "src"
    _wav(src / "a.wav", 3, seed=1)  # 2 chunks
    _wav(src / "b.wav", 4.5, SR, channels=2, seed=2)  # 2 chunks
    _wav(src / "c.wav", 1.5, 16_000, seed=3)  # 1 chunk
    acc = _accompanist(model)
    batches: list[int] = []
    sample_latents = acc.sample_latents

    def spy(vocal, seeds, settings):
        batches.append(vocal.shape[0])
        return sample_latents(vocal, seeds, settings)

    monkeypatch.setattr(acc, "sample_latents", spy)

    def run(name: str, **settings: Any) -> dict[str, np.ndarray]:
        results = acc.run(plan_jobs(src, tmp_path / name, None), GenerateSettings(steps=3, **settings),
                          progress=False)
        assert [r.status for r in results] == ["ok"] * 3
        return {Path(r.input).name: _read(Path(r.output)) for r in results}

    one = run("b1", batch_size=1)
    assert batches == [1] * 5
    three = run("b3", batch_size=3)
    assert batches[5:] == [3, 2]  # chunks of different files shared a batch
    assert {k: v.shape for k, v in one.items()} == {"a.wav": (2, 3 * SR), "b.wav": (2, round(4.5 * SR)),
                                                     "c.wav": (2, round(1.5 * SR))}
    for name in one:
        np.testing.assert_allclose(three[name], one[name], rtol=0, atol=1e-5)
        assert _sidecar(tmp_path / "b3" / f"{name[0]}.accompaniment.wav")["seeds"] == [
            chunk_seed(0, name, k) for k in range(2 if name != "c.wav" else 1)]

    again = run("b3-again", batch_size=3)
    for name in one:
        np.testing.assert_array_equal(again[name], three[name])  # same seed: identical output
    other = run("seed1", batch_size=3, seed=1)
    for name in one:
        assert np.abs(other[name] - three[name]).max() > 1e-3  # another seed: another accompaniment


def test_chunk_seeds_follow_the_path_below_the_input_folder(tmp_path, model):
    """day1/take1.wav and day2/take1.wav got identical noise: seeds came from the file name alone. They now follow
    the path below the input folder (a file at its top keeps its name alone, so its outputs stay as they were); an
    output seeded by the old rule is named stale, with why, not kept in silence."""
    src, out = tmp_path / "src", tmp_path / "out"
    for name in ("day1/take1.wav", "day2/take1.wav", "top.wav"):
        _wav(src / name, 1.5, seed=1)  # the same vocal three times
    acc = _accompanist(model)
    jobs = plan_jobs(src, out, None)
    assert [job.seed_key for job in jobs] == ["top.wav", "day1/take1.wav", "day2/take1.wav"]
    assert [r.status for r in acc.run(jobs, FAST, progress=False)] == ["ok"] * 3
    day1, day2, top = (out / "day1" / "take1.accompaniment.wav", out / "day2" / "take1.accompaniment.wav",
                       out / "top.accompaniment.wav")
    assert _sidecar(day1)["seeds"] == [chunk_seed(0, "day1/take1.wav", 0)] != _sidecar(day2)["seeds"]
    assert np.abs(_read(day1) - _read(day2)).max() > 1e-3  # one vocal, two folders: two accompaniments
    assert _sidecar(top)["seeds"] == [chunk_seed(0, "top.wav", 0)]  # as before
    assert _sidecar(day1)["made_with"]["seed_key"] == "day1/take1.wav"
    assert [r.status for r in acc.run(jobs, FAST, progress=False)] == ["skipped"] * 3  # a rerun: the same seeds

    for wav, old_seed in ((day1, chunk_seed(0, "take1.wav", 0)), (top, chunk_seed(0, "top.wav", 0))):
        record = _sidecar(wav)  # as an output of the old rule recorded it: no seed key, seeds by the name alone
        del record["made_with"]["seed_key"]
        record["seeds"] = [old_seed]
        sidecar_path(wav).write_text(json.dumps(record))
    top_again, stale, day2_again = acc.run(jobs, FAST, progress=False)
    assert top_again.status == day2_again.status == "skipped"  # the top file's seeds are the same under both rules
    assert stale.status == "error" and stale.input == str(src / "day1" / "take1.wav") and "--overwrite" in (
        stale.message)
    assert f"{day1} exists but was made with chunk seeds named by its file name alone, before they followed the " \
           "path below the input folder (this run: 'day1/take1.wav')" in stale.message


def test_decode_is_told_how_much_of_each_chunk_is_kept(model):
    """A chunk padded past its input's end is decoded only as far as join_chunks keeps it (tiles past that are not
    run: tests/test_codec_speed_paths.py); a whole chunk, whole."""
    codec = ProjectionCodec()
    acc = _accompanist(model, codec=codec)
    settings = GenerateSettings(steps=2)
    frames = model.config.num_frames
    n = int(2.3 * frames * HOP_LENGTH)  # two whole chunks and a padded third (or more, with the overlap)
    plan = acc.chunk_plan(n, settings)
    samples = 0.1 * np.random.default_rng(0).standard_normal((2, n)).astype(np.float32)
    acc.accompany(samples, settings, key="k")
    keeps = codec.decode_keeps[-1]
    assert keeps == valid_frames(plan) == [math.ceil(plan.valid(i) / HOP_LENGTH) for i in range(len(plan))]
    assert keeps[:-1] == [frames] * (len(plan) - 1) and 0 < keeps[-1] < frames


def test_chunk_seed_golden():
    assert chunk_seed(0, "a.wav", 0) == 3663485294418374814  # frozen: changing it changes every output
    assert chunk_seed(0, "a.wav", 0) == chunk_seed(0, "a.wav", 0) < 2**63
    assert len({chunk_seed(0, "a.wav", 0), chunk_seed(0, "a.wav", 1), chunk_seed(1, "a.wav", 0),
                chunk_seed(0, "b.wav", 0)}) == 4
    assert chunk_seed(0, "a.wav", 12) != chunk_seed(0, "a.wav1", 2)  # the separator keeps fields apart


# ------------------------------------------------------------------------------------------------ normalisation


def test_load_reads_norm_stats_and_training_record(trained_ckpt, untrained_ckpt, model, stand_in_codec):
    acc = Accompanist.load(trained_ckpt, "stand-in")
    assert acc.norm == _norm_stats()
    assert acc.trained and acc.checkpoint_info["training"] == {"steps": 120, "ema": True, "data": "test"}
    assert acc.checkpoint_info["normalisation"] == "training-split statistics"
    assert acc.checkpoint_info["sha256"] == hashlib.sha256(trained_ckpt.read_bytes()).hexdigest()
    for key, value in model.state_dict().items():
        assert torch.equal(acc.model.state_dict()[key], value), key
    plain = Accompanist.load(untrained_ckpt, "stand-in")
    assert plain.norm is None and not plain.trained and plain.checkpoint_info["training"] is None
    assert plain.checkpoint_info["normalisation"] == "none (identity)"
    assert isinstance(acc.codec, ProjectionCodec) and len(stand_in_codec) == 2


def test_sample_latents_normalises_the_vocal_and_denormalises_the_accompaniment(trained_ckpt, model,
                                                                                stand_in_codec):
    # With stats (mu_v, s_v, mu_a, s_a), sampling must equal: normalise the vocal, sample as without stats, then
    # map back, x * s_a + mu_a. The identity-normalisation model supplies the "as without stats" part.
    stats = _norm_stats()
    vocal = 2 + 3 * torch.randn(2, 64, 64, generator=torch.Generator().manual_seed(7))  # raw VAE scale
    seeds = [1, 2]
    raw = _accompanist(model).sample_latents
    mu_v, s_v, mu_a, s_a = (torch.tensor(v).view(64, 1) for v in (stats.vocal_mean, stats.vocal_std,
                                                                   stats.accomp_mean, stats.accomp_std))
    expected = raw((vocal - mu_v) / s_v, seeds, FAST) * s_a + mu_a
    for acc in (_accompanist(model, stats), Accompanist.load(trained_ckpt, "stand-in")):
        torch.testing.assert_close(acc.sample_latents(vocal, seeds, FAST), expected, rtol=1e-5, atol=1e-5)
    assert (raw(vocal, seeds, FAST) - expected).abs().max() > 0.1  # the stats do change the result


# --------------------------------------------------------------------------------------------- settings and jobs


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sampler": "euler"}, "unknown sampler 'euler'"), ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"steps": 0}, "steps must be >= 1"), ({"spacing": "cubic"}, "spacing must be"),
    ({"overlap_frames": -1}, "overlap_frames must be >= 0"),
])
def test_settings_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GenerateSettings(**kwargs)


def test_settings_default_steps():
    assert [GenerateSettings(sampler=s).n_steps for s in ("dpmpp", "ddim", "ddpm")] == [25, 50, 800]
    assert GenerateSettings(steps=7).n_steps == 7


def test_too_many_steps_fail_before_any_work(tmp_path, model):
    codec = ProjectionCodec()
    with pytest.raises(ValueError, match=r"steps must lie in \[1, 800\]"):
        _accompanist(model, codec=codec).run([(_wav(tmp_path / "a.wav", 1.5), tmp_path / "o.wav", None)],
                                             GenerateSettings(steps=801), progress=False)
    assert codec.calls == []


def test_plan_jobs(tmp_path):
    src = tmp_path / "src"
    for name in ("b.flac", "a.wav", ".hidden.wav"):
        _wav(src / name, 1.5)
    for name in ("a.wav.json", "notes.txt"):
        (src / name).write_text("x")
    (src / "sub").mkdir()
    out, mix = tmp_path / "out", tmp_path / "mix"
    plan = plan_inputs(src, out, mix)
    assert plan.jobs == [  # sorted; hidden files and empty folders left out; files not audio by name named, not read
        (src / "a.wav", out / "a.accompaniment.wav", mix / "a.mix.wav", "a.wav"),
        (src / "b.flac", out / "b.accompaniment.wav", mix / "b.mix.wav", "b.flac"),
    ]
    assert [(n.path.name, n.kind) for n in plan.not_inputs] == [("a.wav.json", "not audio"),
                                                                ("notes.txt", "not audio")]
    assert plan.summary() == ["plan: 2 inputs; 2 files not audio by name ignored (a.wav.json, notes.txt)"]
    assert plan_jobs(src / "a.wav", out / "x.wav", None) == [(src / "a.wav", out / "x.wav", None, None)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: holds no audio file to read$"):
        plan_jobs(tmp_path / "empty", out, None)
    (tmp_path / "empty" / "lyrics.txt").write_text("la la")
    with pytest.raises(FileNotFoundError, match=r"holds no audio file to read \(1 file not audio by name"):
        plan_jobs(tmp_path / "empty", out, None)
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="-o must be a directory"):
        plan_jobs(src, tmp_path / "file.wav", None)
    # a single file's output must be writable as float audio, checked before any work (not after all of it)
    with pytest.raises(IsADirectoryError, match=re.escape(f"{out.parent}: is a directory")):
        plan_jobs(src / "a.wav", out.parent, None)
    with pytest.raises(ValueError, match=r"out\.flac: -o must name a \.wav file"):
        plan_jobs(src / "a.wav", tmp_path / "out.flac", None)
    with pytest.raises(ValueError, match=r"mix: --mix must name a \.wav file: .*no extension"):
        plan_jobs(src / "a.wav", tmp_path / "out.wav", tmp_path / "mix")


def test_sidecar_path():
    assert sidecar_path(Path("/x/song.accompaniment.wav")) == Path("/x/song.accompaniment.wav.json")


# ------------------------------------------------------------------------------------------------ bad CLI input


def _generate(tmp_path: Path, *extra: str) -> int:
    vocals = tmp_path / "vocals.wav"
    if not vocals.exists():
        _wav(vocals, 1.5)
    return main(["generate", str(vocals), "-o", str(tmp_path / "out.wav"), "--no-progress", *extra])


def test_cli_without_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SAMUEL_CHECKPOINT", raising=False)
    assert _generate(tmp_path) == 2
    err = capsys.readouterr().err
    assert "no SAMUeL checkpoint given" in err and "--checkpoint" in err and "$SAMUEL_CHECKPOINT" in err
    assert "samuel train" in err  # and how to get one
    assert not (tmp_path / "out.wav").exists()


def test_cli_checkpoint_that_does_not_exist(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere" / "model.safetensors"
    monkeypatch.delenv("SAMUEL_CHECKPOINT", raising=False)
    assert _generate(tmp_path, "--checkpoint", str(missing)) == 2
    assert f"{missing}: no such weights file" in capsys.readouterr().err
    monkeypatch.setenv("SAMUEL_CHECKPOINT", str(missing))  # the same through the environment
    assert _generate(tmp_path) == 2
    assert f"{missing}: no such weights file" in capsys.readouterr().err


def test_cli_bad_settings_and_outputs_fail_before_loading(tmp_path, capsys):
    missing = str(tmp_path / "missing.safetensors")  # never reached: these fail first
    # --guidance nan used to encode and sample every file, then refuse each output as NaN: now a usage error
    for option, value, problem in (("--steps", "0", "must be >= 1, got '0'"), ("--batch-size", "0", "must be >= 1"),
                                   ("--guidance", "nan", "must be a finite number, got 'nan'"),
                                   ("--guidance", "inf", "must be a finite number, got 'inf'")):
        with pytest.raises(SystemExit) as exit_:
            _generate(tmp_path, "--checkpoint", missing, option, value)
        assert exit_.value.code == 2 and f"argument {option}: {problem}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="guidance must be a finite number, got nan"):
        GenerateSettings(guidance=float("nan"))  # the library refuses it too, before any work
    vocals = tmp_path / "vocals.wav"
    assert main(["generate", str(vocals), "-o", str(tmp_path / "out.flac"), "--checkpoint", missing]) == 2
    err = capsys.readouterr().err
    assert "out.flac: -o must name a .wav file" in err and "no such weights file" not in err


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache, HF_HUB_OFFLINE=1, and the network cut off (as in tests/test_codec.py)."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the codec tried to reach the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return cache


def test_cli_missing_codec(tmp_path, untrained_ckpt, offline_hub, capsys):
    assert _generate(tmp_path, "--checkpoint", str(untrained_ckpt)) == 2  # the default codec: not in the cache
    err = capsys.readouterr().err
    for needle in (f"weights not found for '{DEFAULT_CODEC}'", str(offline_hub), "HF_HUB_OFFLINE=1", "--codec",
                   "hf download"):
        assert needle in err, needle
    missing = tmp_path / "no-such-vae"
    assert _generate(tmp_path, "--checkpoint", str(untrained_ckpt), "--codec", str(missing)) == 2
    assert f"codec path not found: '{missing}'" in capsys.readouterr().err
    assert not (tmp_path / "out.wav").exists()
