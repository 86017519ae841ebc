"""`samuel prepare`: stem discovery, the end-to-end run, resume, interruption and the Demucs contract.

Most tests encode with :class:`ProjectionCodec` (tests/helpers.py), a stand-in with the codec's interface and
input checks. The tiny random Oobleck VAE (`save_tiny_random_oobleck`) has the real hop, so its encoder runs 128
channels wide at the full 44.1 kHz rate: one 47.55 s chunk took about 4 minutes on this project's 2-core CPU, too
slow for a test suite that encodes a dozen chunks. It is used where no chunk needs encoding (provenance and the
manifest, slow-marked).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import ProjectionCodec

from samuel.audio import load_audio
from samuel.chunking import CHUNK_SAMPLES
from samuel.data import ACCOMP_FILE, MANIFEST_FILE, MANIFEST_FORMAT, VOCAL_FILE, open_latent_dataset
from samuel.prepare import (
    DEMUCS_MISSING,
    PrepareError,
    codec_identity,
    demucs_command,
    discover_songs,
    prepare,
    separate_with_demucs,
    slugify,
    song_from_files,
)

RATE = 8000  # small files; load_audio upsamples to 44.1 kHz stereo
FAKE_DEMUCS = Path(__file__).parent / "fake_demucs"
# The test files are 8 kHz on purpose; load_audio's warning about upsampling is expected (prepare records it).
pytestmark = pytest.mark.filterwarnings("ignore:.*upsampled to 44100 Hz:UserWarning")


def _tone(seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def _wav(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _tone(seconds, seed), RATE, subtype="PCM_16")
    return path


def _song(src: Path, name: str, seconds: float, seed: int = 0, accomp_seconds: float | None = None) -> Path:
    _wav(src / name / "vocals.wav", seconds, seed)
    _wav(src / name / "accompaniment.wav", seconds if accomp_seconds is None else accomp_seconds, seed + 100)
    return src / name


def _chunk_latents(codec: ProjectionCodec, path: Path, k: int) -> np.ndarray:
    samples = load_audio(path, min_seconds=0).samples
    chunk = torch.from_numpy(np.ascontiguousarray(samples[:, k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES]))
    return codec.encode(chunk[None])[0].numpy()


def _by_name(manifest: dict) -> dict[str, dict]:
    return {s["name"]: s for s in manifest["songs"]}


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# --------------------------------------------------------------------------------------------------- discovery


def _touch_files(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # discovery goes by name only; nothing is decoded


def test_discover_layouts(tmp_path):
    _touch_files(tmp_path / "a plain", "Vocals.WAV", "Accompaniment.flac", "notes.txt", "cover.jpg", "._vocals.wav")
    _touch_files(tmp_path / "b musdb", "mixture.wav", "drums.wav", "bass.wav", "other.wav", "vocals.wav")
    _touch_files(tmp_path / "c demucs", "vocals.wav", "no_vocals.wav")
    _touch_files(tmp_path / "d mix only", "Mix.mp3", "lyrics.txt")
    _touch_files(tmp_path / "e no audio", "readme.txt")
    _touch_files(tmp_path / "set" / "f nested", "voice.ogg", "INST.aiff")
    _touch_files(tmp_path / "g both", "vocal.wav", "instrumental.wav", "drums.wav", "guitar.wav")
    songs = discover_songs(tmp_path)
    assert [s.name for s in songs] == ["a plain", "b musdb", "c demucs", "d mix only", "g both", "set/f nested"]
    a, b, c, d, g, f = songs
    assert a.vocals.name == "Vocals.WAV" and [p.name for p in a.accompaniment] == ["Accompaniment.flac"]
    assert a.mixture is None and a.problem is None and a.has_stems
    assert [p.name for p in b.accompaniment] == ["bass.wav", "drums.wav", "other.wav"]  # summed, MUSDB-HQ style
    assert b.mixture.name == "mixture.wav" and b.vocals.name == "vocals.wav"
    assert [p.name for p in c.accompaniment] == ["no_vocals.wav"]
    assert d.vocals is None and d.accompaniment == () and d.mixture.name == "Mix.mp3" and not d.has_stems
    assert [p.name for p in g.accompaniment] == ["instrumental.wav"]  # the full instrumental wins over parts
    assert [p.name for p in g.ignored] == ["guitar.wav"]
    assert f.vocals.name == "voice.ogg" and f.accompaniment[0].name == "INST.aiff"
    assert f.folder == tmp_path / "set/f nested"
    assert discover_songs(tmp_path) == songs  # deterministic


def test_discover_song_folder_itself_and_ambiguity(tmp_path):
    _touch_files(tmp_path / "One Song", "vocals.wav", "accomp.wav")
    (only,) = discover_songs(tmp_path / "One Song")
    assert only.name == "One Song" and only.has_stems
    song = song_from_files("x", tmp_path, [Path("vocals.wav"), Path("Vocals.flac"), Path("no-vocals.wav")])
    assert song.problem is not None and "2 vocals files" in song.problem
    assert song.accompaniment == (Path("no-vocals.wav"),)  # '-' counts as '_'
    with pytest.raises(PrepareError, match="not a directory"):
        discover_songs(tmp_path / "missing")


def test_a_stem_libsndfile_cannot_decode_is_named_not_passed_over(tmp_path):
    """A song whose vocal is vocals.m4a was not a song at all (the folder held no audio to discovery) and the run said
    only "no audio files"; bass.m4a among MUSDB parts would have left the bass out of the summed accompaniment."""
    _touch_files(tmp_path / "s1", "vocals.m4a", "no_vocals.wav")
    _touch_files(tmp_path / "s2", "vocals.wav", "vocals.m4a", "no_vocals.wav")  # a decodable vocal stands for it
    _touch_files(tmp_path / "s3", "vocals.wav", "drums.wav", "bass.m4a")  # no decodable bass: a problem
    _touch_files(tmp_path / "s4", "vocals.wma", "accompaniment.aac")
    s1, s2, s3, s4 = discover_songs(tmp_path)
    assert s1.vocals is None and s1.problem is not None
    assert "vocals.m4a is .m4a (AAC or ALAC in MP4), which libsndfile cannot decode" in s1.problem
    assert "ffmpeg -i 'vocals.m4a' 'vocals.flac'" in s1.problem and str(tmp_path / "s1") in s1.problem
    assert s2.problem is None and s2.vocals.name == "vocals.wav" and [p.name for p in s2.ignored] == ["vocals.m4a"]
    assert s3.problem is not None and "bass.m4a is .m4a" in s3.problem and "ambiguous" not in s3.problem
    assert "vocals.wma is .wma" in s4.problem and "accompaniment.aac is .aac" in s4.problem
    src = tmp_path / "src"
    _song(src, "ok", 50, seed=1)
    _touch_files(src / "m4a", "vocals.m4a", "accompaniment.m4a")
    songs = _by_name(prepare(src, tmp_path / "dst", ProjectionCodec(), progress=False))
    assert songs["ok"]["status"] == "ok"
    assert songs["m4a"]["status"] == "error" and "vocals.m4a is .m4a" in songs["m4a"]["message"]


def test_musdb18_stem_mp4_files_are_skipped_with_the_export_that_makes_them_usable(tmp_path):
    """MUSDB18 (not -HQ) ships each song as one .stem.mp4; the skip said only "expected file names like vocals"."""
    from samuel.prepare import skip_reason

    _touch_files(tmp_path / "train", "A Song.stem.mp4", "B.stem.mp4")
    (song,) = discover_songs(tmp_path)
    reason = skip_reason(song)
    assert reason.startswith("no vocal + accompaniment pair (A Song.stem.mp4, B.stem.mp4): A Song.stem.mp4 is a "
                             "Native Instruments stems file (MUSDB18's .stem.mp4")
    assert "-map 0:4 'A Song/vocals.wav'" in reason and "MUSDB18-HQ" in reason


def test_slugify():
    assert slugify("Beyoncé - Halo (Live) ") == "beyonc-halo-live"
    assert slugify("???") == "song"


# -------------------------------------------------------------------------------------------------- end to end


def test_prepare_end_to_end(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "good", 100, seed=1)  # 100 s -> 2 chunks of 47.55 s, tail dropped
    _song(src, "short", 30, seed=2)
    _wav(src / "corrupt" / "accompaniment.wav", 50, seed=3)
    (src / "corrupt" / "vocals.wav").write_bytes(b"RIFF but not really a wave file at all")
    codec = ProjectionCodec()
    stand_in = codec.provenance()  # plus what the real codec's provenance says of its weights
    codec.provenance = lambda: {**stand_in, "source": "/models/vae", "format": "diffusers",  # type: ignore[method-assign]
                                "weights_sha256": "d" * 64, "random_weights": False}
    manifest = prepare(src, dst, codec, batch_size=1, progress=False)

    assert manifest.pop("this_run") == {"reused": [], "redone": {}}  # what this call did; not in the file
    assert manifest == json.loads((dst / MANIFEST_FILE).read_text())
    assert manifest["format"] == MANIFEST_FORMAT and manifest["complete"] is True
    assert manifest["codec"] == codec.provenance() and manifest["chunk_frames"] == 1024
    songs = _by_name(manifest)
    assert [s["name"] for s in manifest["songs"]] == ["corrupt", "good", "short"]
    good, short, bad = songs["good"], songs["short"], songs["corrupt"]
    assert good["status"] == "ok" and good["n_chunks"] == 2 and good["shard"] == "shards/0001-good"
    assert good["seconds"] == pytest.approx(100, abs=1e-3)
    assert [s["path"] for s in good["sources"]] == [str(src / "good/vocals.wav"), str(src / "good/accompaniment.wav")]
    assert any("upsampled" in note for note in good["notes"])  # load_audio's warning, kept with its song
    assert short["status"] == "skipped" and "shorter than one training chunk" in short["reason"]
    assert short["shard"] is None and short["n_chunks"] == 0
    assert bad["status"] == "error" and str(src / "corrupt" / "vocals.wav") in bad["message"]
    assert manifest["totals"] == {"songs": 3, "ok": 1, "skipped": 1, "error": 1, "chunks": 2,
                                  "hours": round(2 * CHUNK_SAMPLES / 44100 / 3600, 4)}
    assert len(codec.calls) == 4 and all(c == (1, 2, CHUNK_SAMPLES) for c in codec.calls)  # batch_size 1

    for name in (VOCAL_FILE, ACCOMP_FILE):
        arr = np.load(dst / good["shard"] / name)
        assert arr.shape == (2, 64, 1024) and arr.dtype == np.float32
    ds = open_latent_dataset(dst)
    assert len(ds) == 2 and ds.groups.tolist() == [1, 1]
    # what a model trained on this folder records of its data (samuel.train): the VAE that made the latents, which
    # `samuel generate` compares with its own, and the folder as an absolute path (a relative one named nothing)
    described = ds.describe()
    assert described["codec"] == {"source": "/models/vae", "format": "diffusers", "weights_sha256": "d" * 64,
                                  "random_weights": False}
    assert described["root"] == str(dst.resolve())
    for k in range(2):
        vocal, accomp = ds[k]
        np.testing.assert_allclose(vocal.numpy(), _chunk_latents(codec, src / "good/vocals.wav", k), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(accomp.numpy(), _chunk_latents(codec, src / "good/accompaniment.wav", k),
                                   rtol=1e-5, atol=1e-6)


def test_musdb_parts_are_summed_and_lengths_aligned(tmp_path):
    folder = tmp_path / "src" / "track"
    _wav(folder / "vocals.wav", 50, seed=1)
    for seed, part in enumerate(("drums", "bass", "other")):
        _wav(folder / f"{part}.wav", 52, seed=10 + seed)  # 2 s longer than the vocal: aligned, with a note
    _wav(folder / "mixture.wav", 52, seed=9)
    codec = ProjectionCodec()
    manifest = prepare(tmp_path / "src", tmp_path / "dst", codec, progress=False)
    (song,) = manifest["songs"]
    assert song["status"] == "ok" and song["n_chunks"] == 1 and song["seconds"] == pytest.approx(50, abs=1e-3)
    assert [Path(s["path"]).name for s in song["sources"]] == ["vocals.wav", "bass.wav", "drums.wav", "other.wav"]
    assert any("sum of bass.wav, drums.wav, other.wav" in n for n in song["notes"])
    assert any("cut to the shorter" in n for n in song["notes"])
    parts = sum(load_audio(folder / f"{p}.wav", min_seconds=0).samples for p in ("bass", "drums", "other"))
    expected = codec.encode(torch.from_numpy(np.ascontiguousarray(parts[:, :CHUNK_SAMPLES]))[None])[0].numpy()
    np.testing.assert_allclose(open_latent_dataset(tmp_path / "dst")[0][1].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_moisesdb_stem_folders_make_one_song_with_every_track_summed(tmp_path):
    """MoisesDB keeps each stem in its own folder of tracks (vocals/<uuid>.wav, drums/..., guitar/...): each folder
    was taken as a song without a vocal + accompaniment pair, so the dataset gave no training pair at all."""
    src = tmp_path / "moisesdb"
    song = src / "0a1b"
    _wav(song / "vocals" / "lead.wav", 50, seed=1)
    _wav(song / "vocals" / "backing.wav", 50, seed=2)
    _wav(song / "drums" / "kit.wav", 50, seed=3)
    _wav(song / "guitar" / "g1.wav", 50, seed=4)
    _wav(song / "guitar" / "g2.wav", 50, seed=5)
    (song / "data.json").write_text("{}")
    _wav(src / "9z_instrumental" / "drums" / "d.wav", 50, seed=6)  # no vocals folder: one skipped song
    _wav(src / "9z_instrumental" / "piano" / "p.wav", 50, seed=7)
    codec = ProjectionCodec()
    songs = _by_name(prepare(src, tmp_path / "dst", codec, progress=False))
    assert set(songs) == {"0a1b", "9z_instrumental"}
    ok = songs["0a1b"]
    assert ok["status"] == "ok" and ok["n_chunks"] == 1
    assert [Path(x["path"]).relative_to(song).as_posix() for x in ok["sources"]] == [
        "vocals/backing.wav", "vocals/lead.wav", "drums/kit.wav", "guitar/g1.wav", "guitar/g2.wav"]
    assert "vocal = sum of vocals/backing.wav, vocals/lead.wav (stem folders)" in ok["notes"]
    assert "accompaniment = sum of drums/kit.wav, guitar/g1.wav, guitar/g2.wav (stem folders)" in ok["notes"]
    assert songs["9z_instrumental"]["status"] == "skipped"
    assert "drums/d.wav, piano/p.wav" in songs["9z_instrumental"]["reason"]

    def summed(*names: str) -> np.ndarray:
        audio = sum(load_audio(song / n, min_seconds=0).samples for n in names)
        return codec.encode(torch.from_numpy(np.ascontiguousarray(audio[:, :CHUNK_SAMPLES]))[None])[0].numpy()

    vocal, accompaniment = open_latent_dataset(tmp_path / "dst")[0]
    np.testing.assert_allclose(vocal.numpy(), summed("vocals/lead.wav", "vocals/backing.wav"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(accompaniment.numpy(), summed("drums/kit.wav", "guitar/g1.wav", "guitar/g2.wav"),
                               rtol=1e-5, atol=1e-6)


def test_parallel_vocals_and_accompaniment_folders_pair_files_by_name(tmp_path):
    """src/vocals/X.wav beside src/accompaniment/X.wav: a song per file name, not one song of every file summed."""
    src = tmp_path / "src"
    for seed, name in enumerate(("a", "b")):
        _wav(src / "vocals" / f"{name}.wav", 50, seed=seed)
        _wav(src / "accompaniment" / f"{name}.flac", 50, seed=seed + 10)
    _wav(src / "vocals" / "c.wav", 50, seed=5)  # no accompaniment: skipped by name
    songs = discover_songs(src)
    assert [(s.name, s.vocals.name, [p.name for p in s.accompaniment]) for s in songs] == [
        ("a", "a.wav", ["a.flac"]), ("b", "b.wav", ["b.flac"]), ("c", "c.wav", [])]
    assert not songs[2].has_stems


def test_mixture_only_is_skipped_without_separate(tmp_path):
    _wav(tmp_path / "src" / "song" / "mixture.wav", 50, seed=0)
    _wav(tmp_path / "src" / "other" / "guitar.wav", 50, seed=0)
    manifest = prepare(tmp_path / "src", tmp_path / "dst", ProjectionCodec(), progress=False)
    songs = _by_name(manifest)
    assert songs["song"]["status"] == "skipped" and "--separate" in songs["song"]["reason"]
    assert songs["other"]["status"] == "skipped" and "guitar.wav" in songs["other"]["reason"]
    with pytest.raises(PrepareError, match="no audio files"):
        prepare(tmp_path / "dst", tmp_path / "dst2", ProjectionCodec(), progress=False)


def test_one_bad_song_never_sinks_the_run(tmp_path):
    src = tmp_path / "src"
    _song(src, "a", 50, seed=1)
    _song(src, "b", 50, seed=2)
    _touch_files(src / "c", "vocals.wav", "vocal.flac", "accompaniment.wav")  # two vocal files: ambiguous
    codec = ProjectionCodec()
    codec.fail_once = RuntimeError("CUDA out of memory")
    songs = _by_name(prepare(src, tmp_path / "dst", codec, progress=False))
    assert songs["a"]["status"] == "error"
    assert songs["a"]["message"] == f"{src.resolve() / 'a'}: CUDA out of memory"  # names the song it concerns
    assert songs["b"]["status"] == "ok"
    assert songs["c"]["status"] == "error" and "2 vocals files (vocal.flac, vocals.wav)" in songs["c"]["message"]
    assert not (tmp_path / "dst/shards/0000-a").exists()


# ------------------------------------------------------------------------------------------------------ resume


def test_resume_skips_finished_songs_and_redoes_changed_ones(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "good", 50, seed=1)
    _song(src, "short", 30, seed=2)
    codec = ProjectionCodec()
    first = prepare(src, dst, codec, progress=False)
    assert len(codec.calls) == 2  # one chunk: one vocal call, one accompaniment call
    shard_file = dst / _by_name(first)["good"]["shard"] / VOCAL_FILE
    written = shard_file.stat().st_mtime_ns

    assert first["this_run"] == {"reused": [], "redone": {}}
    lines: list[str] = []
    second = prepare(src, dst, codec, progress=False, log=lines.append)
    assert len(codec.calls) == 2, "the finished song was encoded again"
    assert _by_name(second)["good"] == _by_name(first)["good"]
    assert shard_file.stat().st_mtime_ns == written
    assert second["this_run"] == {"reused": ["good"], "redone": {}} and lines == []
    assert "this_run" not in json.loads((dst / MANIFEST_FILE).read_text())  # what this call did, not the data's

    # each redo is said, with why (a stale shard is redone, never silently kept or silently replaced)
    _touch(src / "good" / "accompaniment.wav")  # a changed source (size or mtime) makes the shard stale
    third = prepare(src, dst, codec, progress=False, log=lines.append)
    assert len(codec.calls) == 4
    assert _by_name(third)["good"]["sources"] != _by_name(first)["good"]["sources"]
    assert lines == ["prepare: redo good: its source files changed since (size or modification time)"]

    (dst / _by_name(third)["good"]["shard"] / ACCOMP_FILE).unlink()  # an incomplete shard is redone
    prepare(src, dst, codec, progress=False, log=lines.append)
    assert len(codec.calls) == 6
    assert lines[-1] == f"prepare: redo good: its shard {_by_name(third)['good']['shard']} is missing or incomplete"

    other = ProjectionCodec(seed=1)  # another codec: its latents are not interchangeable, so all is redone
    prepare(src, dst, other, progress=False, log=lines.append)
    assert len(other.calls) == 2
    assert lines[-1].startswith(f"prepare: not reusing the earlier run: {dst / MANIFEST_FILE} was made with "
                                "another VAE") and lines[-1].endswith("every song is encoded again")
    lines.clear()
    prepare(src, dst, other, downmix=True, progress=False, log=lines.append)  # a stereo song: no file to fold
    assert len(other.calls) == 2 and lines == []


def test_downmix_redoes_only_the_songs_it_folds(tmp_path):
    """Adding --downmix for one 5.1 song re-encoded every stereo song ("redo good: encoded with --downmix off
    before"), though --downmix only admits files of more than 2 channels. A rerun now equals a fresh run with the
    options given: the stereo song is kept both ways, the 5.1 song is encoded with --downmix and refused without."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "stereo", 50, seed=1)
    _song(src, "surround", 50, seed=2)
    sf.write(str(src / "surround" / "vocals.wav"), _tone(50, 2, channels=6), RATE, subtype="PCM_16")
    codec, lines = ProjectionCodec(), []
    first = prepare(src, dst, codec, progress=False)
    assert _by_name(first)["surround"]["status"] == "error" and len(codec.calls) == 2

    second = prepare(src, dst, codec, downmix=True, progress=False, log=lines.append)
    assert second["this_run"]["reused"] == ["stereo"] and lines == []
    assert _by_name(second)["surround"]["status"] == "ok" and len(codec.calls) == 4

    third = prepare(src, dst, codec, progress=False, log=lines.append)
    assert lines == ["prepare: redo surround: --downmix folded vocals.wav (6 channels) to stereo before; without it "
                     "such a file is refused"]
    assert third["this_run"]["reused"] == ["stereo"] and len(codec.calls) == 4
    assert "6 channels" in _by_name(third)["surround"]["message"]


def test_interrupted_run_keeps_finished_songs(tmp_path, capsys):
    from samuel.cli import main

    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "a", 50, seed=1)
    _song(src, "b", 50, seed=2)
    codec = ProjectionCodec()
    codec.fail_after = 3  # Ctrl-C while encoding song b's accompaniment
    with pytest.raises(KeyboardInterrupt):
        prepare(src, dst, codec, progress=False)
    manifest = json.loads((dst / MANIFEST_FILE).read_text())
    assert manifest["complete"] is False and [s["name"] for s in manifest["songs"]] == ["a"]
    partial = open_latent_dataset(dst)
    assert len(partial) == 1 and partial.describe()["complete"] is False  # what was finished is usable
    # ... and `samuel train` on it says it is unfinished (it trained on it without a word)
    main(["train", "--data", str(dst), "--out", str(tmp_path / "run"), "--preset", "tiny", "--max-steps", "1",
          "--batch-size", "1", "--precision", "fp32", "--no-progress"])
    assert f"train: {dst} is an unfinished `samuel prepare` run (1 songs, 1 chunks so far)" in capsys.readouterr().err
    codec.fail_after = None
    final = prepare(src, dst, codec, progress=False)
    assert len(codec.calls) == 5  # 3 before the interruption, then song b's 2; song a was not redone
    assert final["complete"] is True and final["totals"]["ok"] == 2
    assert len(open_latent_dataset(dst)) == 2 and open_latent_dataset(dst).complete


# ------------------------------------------------------------------------------------------------------ demucs


@pytest.fixture
def fake_demucs(monkeypatch):
    # This tests our side of the `python -m demucs.separate` CLI contract with a stand-in, not Demucs itself.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FAKE_DEMUCS), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(FAKE_DEMUCS))  # for prepare's find_spec("demucs") check in this process


def test_demucs_command_contract(tmp_path, fake_demucs):
    mixture = _wav(tmp_path / "in" / "my.song.wav", 2, seed=0)
    out = tmp_path / "out"
    assert demucs_command(mixture, out) == [sys.executable, "-m", "demucs.separate", "--two-stems", "vocals", "-n",
                                            "htdemucs", "-o", str(out), str(mixture)]
    vocals, no_vocals = separate_with_demucs(mixture, out)
    assert (vocals, no_vocals) == (out / "htdemucs/my.song/vocals.wav", out / "htdemucs/my.song/no_vocals.wav")
    assert json.loads((out / "htdemucs/my.song/args.json").read_text()) == demucs_command(mixture, out)[3:]
    mix, _ = sf.read(str(mixture), dtype="float32")
    np.testing.assert_allclose(sf.read(str(vocals), dtype="float32")[0], 0.25 * mix)


def test_prepare_with_separation(tmp_path, fake_demucs):
    src = tmp_path / "src"
    mixture = _wav(src / "song" / "mixture.wav", 50, seed=4)
    _wav(src / "will_fail" / "mixture.wav", 50, seed=5)
    codec = ProjectionCodec()
    songs = _by_name(prepare(src, tmp_path / "dst", codec, separate=True, progress=False))
    song = songs["song"]
    assert song["status"] == "ok" and song["separated"] is True and song["n_chunks"] == 1
    assert [s["path"] for s in song["sources"]] == [str(mixture)]
    assert songs["will_fail"]["status"] == "error" and "Demucs failed (exit 3)" in songs["will_fail"]["message"]
    # the fake's vocals are 0.25 x the mixture, written as float at the mixture's rate: rebuild them the same way
    mix, rate = sf.read(str(mixture), dtype="float32", always_2d=True)
    sf.write(str(tmp_path / "v.wav"), 0.25 * mix, rate, subtype="FLOAT")
    vocal, _ = open_latent_dataset(tmp_path / "dst")[0]
    np.testing.assert_allclose(vocal.numpy(), _chunk_latents(codec, tmp_path / "v.wav", 0), rtol=1e-5, atol=1e-6)


def test_missing_demucs_fails_up_front(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "demucs", None)  # makes importlib.util.find_spec("demucs") return None
    _wav(tmp_path / "src" / "song" / "mixture.wav", 2, seed=0)
    with pytest.raises(PrepareError) as err:
        prepare(tmp_path / "src", tmp_path / "dst", ProjectionCodec(), separate=True, progress=False)
    assert str(err.value) == DEMUCS_MISSING
    assert "pip install 'samuel-bench[demucs]'" in DEMUCS_MISSING and "torchaudio" in DEMUCS_MISSING
    assert not (tmp_path / "dst").exists()


# ------------------------------------------------------------------------------------------ the real tiny codec


@pytest.fixture(scope="session")
def tiny_codec(tmp_path_factory):
    from samuel.codec import OobleckCodec, save_tiny_random_oobleck

    return OobleckCodec.load(save_tiny_random_oobleck(tmp_path_factory.mktemp("codec") / "tiny"))


@pytest.mark.slow
def test_manifest_with_the_real_codec(tmp_path, tiny_codec):
    # No song here yields a chunk, so nothing is encoded (minutes per chunk on CPU); this checks the real codec's
    # attributes and provenance in the manifest, and that reruns with it recognise it as the same codec.
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "short", 3, seed=0)
    _song(src, "bad", 3, seed=0)
    (src / "bad" / "vocals.wav").write_text("nope")
    manifest = prepare(src, dst, tiny_codec, progress=False)
    assert manifest["codec"]["random_weights"] is True and manifest["codec"]["weights_sha256"]
    assert manifest["latent_channels"] == 64 and manifest["hop_length"] == tiny_codec.hop_length
    assert [s["status"] for s in manifest["songs"]] == ["error", "skipped"]
    # a rerun compares codecs by weights hash, config and dtype, so the JSON round trip must not change that
    assert codec_identity(json.loads(json.dumps(manifest["codec"]))) == codec_identity(tiny_codec.provenance())


def test_cli_prepare_reports_and_exits_by_outcome(tmp_path, tiny_codec, capsys):
    """`samuel prepare` through the CLI: per-song failures give exit 1 with the file named; a missing SRC or a
    missing codec give exit 2 with one message."""
    from samuel.cli import main

    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "short", 3, seed=0)
    _song(src, "bad", 3, seed=0)
    (src / "bad" / "vocals.wav").write_text("nope")
    codec_dir = tiny_codec.provenance()["resolved"]
    assert main(["prepare", str(src), "-o", str(dst), "--codec", codec_dir, "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "0 songs ready" in captured.out and "1 skipped, 1 failed" in captured.out
    assert "vocals.wav" in captured.err
    # each line names its song: "skipped: 3.00 s is shorter ..." alone did not say which one
    assert "  skipped short: 3.00 s is shorter" in captured.err and "  error bad: " in captured.err
    assert json.loads((dst / MANIFEST_FILE).read_text())["songs"][0]["status"] == "error"

    assert main(["prepare", str(tmp_path / "nowhere"), "-o", str(dst), "--codec", codec_dir, "--no-progress"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["prepare", str(src), "-o", str(dst), "--codec", str(tmp_path / "no-vae"), "--no-progress"]) == 2
    assert "no-vae" in capsys.readouterr().err


def test_cli_prepare_shows_the_notes_of_songs_encoded_now(tmp_path, monkeypatch, capsys):
    """A stem 20 s shorter than its vocal (a wrong pairing, likely) and an upsampled file were noted in the manifest
    only; the console now shows them for the songs this run encoded, not the MUSDB sum note, not on a rerun."""
    import samuel.codec
    from samuel.cli import main

    monkeypatch.setattr(samuel.codec.OobleckCodec, "load", classmethod(lambda cls, spec, **kw: ProjectionCodec()))
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "paired", 50, seed=0, accomp_seconds=70)
    folder = src / "musdb"
    _wav(folder / "vocals.wav", 50, seed=1)
    for seed, part in enumerate(("drums", "bass", "other")):
        _wav(folder / f"{part}.wav", 50, seed=10 + seed)
    assert main(["prepare", str(src), "-o", str(dst), "--codec", "stand-in", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "  note paired: vocal is 50.00 s but accompaniment is 70.00 s; both cut to the shorter" in err
    assert "  note musdb: " in err and "upsampled to 44100 Hz" in err  # the 8 kHz test files
    assert "sum of" not in err
    assert main(["prepare", str(src), "-o", str(dst), "--codec", "stand-in", "--no-progress"]) == 0
    assert "note" not in capsys.readouterr().err  # both kept: their notes were shown when they were encoded


def test_a_full_disk_stops_prepare_instead_of_failing_each_song(tmp_path, monkeypatch):
    # each song was recorded as failed ("OSError: [Errno 28] ...") and the run went on through every song
    import errno

    import samuel.prepare
    from samuel.atomic import DiskFull

    def full(directory, vocal, accomp):
        raise DiskFull(errno.ENOSPC, "No space left on device", str(directory))

    monkeypatch.setattr(samuel.prepare, "write_latent_pair", full)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _song(src, "a", 50, seed=1)
    _song(src, "b", 50, seed=2)
    codec = ProjectionCodec()
    with pytest.raises(DiskFull):
        prepare(src, dst, codec, progress=False)
    assert len(codec.calls) == 2  # song a's two stems; song b was not started
    assert json.loads((dst / MANIFEST_FILE).read_text())["complete"] is False
