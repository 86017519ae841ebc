"""One conformance suite for every registered generator (the idea of diffusers' ``PipelineTesterMixin``).

Each adapter gets a small subclass of :class:`GeneratorConformance` that says how to build a tiny instance (random
weights saved in the adapter's real format, or a folder of files) and which file it reads per item; it then
inherits every check:

- weights: ``pretrained`` with nothing found gives one message saying what was looked for, where and how to get
  it, and ``auto`` falls back to random weights; parameter counts equal the unique-parameter sum of the loaded
  model (None for rows of files);
- timing hooks: ``on_unit`` is called once per unit, ``total_units`` times in a full run, and ``max_units`` stops
  after that many (rows without units call neither and ignore ``max_units``);
- bad input: an empty file, a non-audio file and a missing file each give an :class:`ItemError` naming the file;
  an adapter that does not condition on the vocal never reads it;
- the item's window: the output depends on ``[start_s, start_s + duration_s)`` of the vocal (or reference) only,
  also for a vocal ten times longer than its item, at 48 kHz mono and 22.05 kHz stereo; a 6-channel vocal is an
  ItemError naming the file unless ``downmix=True``;
- batch equals single, and the same seed gives the same output (another seed another one, for models).

Adapter-specific behaviour (parity with the reference implementation, golden parameter counts of the published
architectures, special weights layouts) stays in ``test_baseline_*.py``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import ProjectionCodec
from tiny_generators import (
    JUKEBOX_TINY,
    one_torch_thread,
    quiet_jukebox_infer,
    save_tiny_jukebox,
    save_tiny_musicgen,
    save_tiny_samuel,
    save_tiny_stable_audio,
    write_signal,
)

from baselines import registry
from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    WeightsChoice,
    WeightsNotFoundError,
)
from samuel.audio import load_window

Reads = Literal["vocal", "reference", "output"] | None
SEED = 1234
PROMPT = "calm piano with soft drums"


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory):
    """No network, an empty Hugging Face cache and an empty home (jukebox-infer's cache), one torch thread."""
    with pytest.MonkeyPatch.context() as mp, one_torch_thread():
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        quiet_jukebox_infer(mp)
        yield


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tiny weights are saved, once per module (several cases share one set)."""
    return tmp_path_factory.mktemp("tiny-weights")


def _same(a: GeneratedAudio, b: GeneratedAudio) -> bool:
    return a.sample_rate == b.sample_rate and a.audio.shape == b.audio.shape and np.array_equal(a.audio, b.audio)


class GeneratorConformance:
    """The checks every generator passes. A subclass sets the class attributes and implements :meth:`build`."""

    spec: ClassVar[str] = ""  # the registry name, or "outputs:NAME=DIR"
    reads: ClassVar[Reads] = None  # the file read per item: the vocal, the reference, a pre-generated output, none
    duration_s: ClassVar[float] = 0.2  # an item the tiny model makes quickly
    seeded: ClassVar[bool] = True  # the seed changes the output (rows of files: it does not)
    has_model: ClassVar[bool] = True  # False: audio files made elsewhere (no parameters, no units)

    # -- what a case provides -------------------------------------------------------------------------------------
    def build(self, weights: Path, folder: Path) -> Generator:
        """A tiny instance, built through the registry, not loaded."""
        raise NotImplementedError

    def prepare(self, gen: Generator) -> None:
        """After ``load()``: stand-ins that keep the checks fast (none by default)."""

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        """The modules a loaded ``gen`` runs, for the parameter count."""
        return []

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        """Adapters asked for ``pretrained`` weights that are not there, each with what its message must say."""
        return []

    def auto_without_weights(self, tmp: Path) -> Generator | None:
        return None

    def output_rate(self, gen: Generator) -> int:
        return gen.sample_rate

    def expected_samples(self, gen: Generator, request: GenerationRequest) -> int:
        """The output length for an input at least as long as the item."""
        return round(request.duration_s * self.output_rate(gen))

    # -- fixtures -------------------------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def folder(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp(cls.__name__)

    @pytest.fixture(scope="class")
    @classmethod
    def gen(cls, weights: Path, folder: Path) -> Generator:
        """One loaded instance for all the checks of the class (loading once keeps the suite fast)."""
        case = cls()
        gen = case.build(weights, folder)
        gen.load()
        case.prepare(gen)
        return gen

    # -- helpers --------------------------------------------------------------------------------------------------
    def audio(self, folder: Path, name: str, seconds: float | None = None, rate: int = 44_100, channels: int = 2,
              seed: int = 0) -> Path:
        """A test signal file under ``folder/inputs`` (the same arguments give the same file)."""
        seconds = self.duration_s if seconds is None else seconds
        path = folder / "inputs" / f"{name}-{seconds:g}s-{rate}-{channels}ch-{seed}.wav"
        return path if path.exists() else write_signal(path, seconds, rate, channels, seed)

    def item(self, folder: Path, item_id: str, audio: Path | None, *, seed: int = SEED, start_s: float = 0.0,
             downmix: bool = False) -> GenerationRequest:
        """A request whose input (per :attr:`reads`) is ``audio``. Rows of pre-generated outputs find theirs by item
        id in a folder, so the file is copied there: a test places all its files before its first generate."""
        fields: dict[str, Any] = {}
        if audio is not None and self.reads == "vocal":
            fields["vocal_path"] = audio
        elif audio is not None and self.reads == "reference":
            fields["reference_path"] = audio
        elif audio is not None and self.reads == "output" and audio.exists():
            (folder / "outputs").mkdir(exist_ok=True)
            shutil.copyfile(audio, folder / "outputs" / f"{item_id}{audio.suffix}")
        return GenerationRequest(item_id, seed, self.duration_s, PROMPT, start_s=start_s, downmix=downmix, **fields)

    def input_file(self, folder: Path, request: GenerationRequest) -> Path:
        """The file the adapter reads for ``request`` (per :attr:`reads`)."""
        if self.reads == "output":
            return folder / "outputs" / f"{request.item_id}.wav"
        path = request.vocal_path if self.reads == "vocal" else request.reference_path
        assert path is not None
        return Path(path)

    def run(self, gen: Generator, requests: Sequence[GenerationRequest], **kwargs: Any) -> list[GeneratedAudio]:
        """``gen.generate`` plus the output contract: one float32 (channels, samples) array per request, finite,
        mono or stereo, at the adapter's rate."""
        outs = gen.generate(list(requests), **kwargs)
        assert len(outs) == len(requests)
        for out in outs:
            assert isinstance(out, GeneratedAudio)
            assert out.audio.dtype == np.float32 and out.audio.ndim == 2 and out.audio.shape[0] in (1, 2)
            assert np.isfinite(out.audio).all()
            assert out.sample_rate == self.output_rate(gen)
        return outs

    def one(self, gen: Generator, request: GenerationRequest, **kwargs: Any) -> GeneratedAudio:
        return self.run(gen, [request], **kwargs)[0]

    # -- weights ----------------------------------------------------------------------------------------------------
    def test_built_through_the_registry(self, gen: Generator) -> None:
        if self.spec.startswith(registry.OUTPUTS_PREFIX):
            from baselines.files import PregeneratedOutputs

            assert isinstance(gen, PregeneratedOutputs)
        else:
            assert type(gen) is registry.resolve_class(self.spec) and gen.name == self.spec

    def test_missing_weights_say_what_where_and_how(self, tmp_path: Path) -> None:
        cases = self.missing_weights(tmp_path)
        assert cases, "a model case must say how its weights go missing"
        for gen, hints in cases:
            with pytest.raises(WeightsNotFoundError) as err:
                _ = gen.status
            message = str(err.value)
            assert gen.name in message and "not found" in message, message
            missing = [h for h in hints if h not in message]
            assert not missing, f"{missing} not in: {message}"
        auto = self.auto_without_weights(tmp_path)
        assert auto is not None and auto.status.kind == "random" and "RANDOM" in auto.status.message

    def test_parameter_counts_are_the_loaded_models_unique_sum(self, weights: Path, folder: Path) -> None:
        fresh = self.build(weights, folder)
        counts = fresh.parameter_counts()  # from the architecture on the meta device, before loading
        if not self.has_model:
            assert counts is None  # no model: files made elsewhere
            return
        fresh.load()
        modules = self.loaded_modules(fresh)
        assert modules, "a model case must name its loaded modules"
        unique = {id(p): p.numel() for m in modules for p in m.parameters()}
        assert counts is not None and counts.total == sum(unique.values())
        assert sum(counts.by_component.values()) == counts.total
        fresh.unload()

    # -- timing hooks -----------------------------------------------------------------------------------------------
    def test_max_units_and_on_unit(self, gen: Generator, folder: Path) -> None:
        request = self.item(folder, "units", self.audio(folder, "a", seed=1))
        ticks: list[int] = []
        total = gen.total_units(request)
        if total is None:  # no units (files): both hooks are ignored
            capped = self.one(gen, request, max_units=1, on_unit=lambda: ticks.append(1))
            assert ticks == [] and _same(capped, self.one(gen, request))
            return
        assert total >= 2
        full = self.one(gen, request, on_unit=lambda: ticks.append(1))
        assert len(ticks) == total == full.info["units_done"]
        ticks.clear()
        part = self.one(gen, request, max_units=total // 2, on_unit=lambda: ticks.append(1))
        assert len(ticks) == total // 2 == part.info["units_done"]

    # -- the vocal ------------------------------------------------------------------------------------------------
    def test_reads_the_vocal_only_when_conditioned_on_it(self, gen: Generator, folder: Path) -> None:
        if self.reads == "vocal":  # an item without a vocal cannot be made
            with pytest.raises(ItemError, match="no vocal"):
                gen.generate([self.item(folder, "novocal", None)])
            return
        (folder / "not-a-vocal.wav").write_text("not audio\n")
        plain = self.item(folder, "novocal", self.audio(folder, "a", seed=1))
        with_bad_vocal = dataclasses.replace(plain, vocal_path=folder / "not-a-vocal.wav")
        assert _same(self.one(gen, plain), self.one(gen, with_bad_vocal))

    # -- batch and seed ---------------------------------------------------------------------------------------------
    def test_batch_equals_single(self, gen: Generator, folder: Path) -> None:
        a = self.item(folder, "batch-a", self.audio(folder, "a", seed=1), seed=11)
        b = self.item(folder, "batch-b", self.audio(folder, "b", seed=2), seed=12)
        both = self.run(gen, [a, b])
        singles = [self.one(gen, a), self.one(gen, b)]
        for batched, single, request in zip(both, singles, (a, b), strict=True):
            assert _same(batched, single)
            assert batched.audio.shape[1] == self.expected_samples(gen, request)
        assert not _same(both[0], both[1])

    def test_deterministic_per_seed(self, gen: Generator, folder: Path) -> None:
        audio = self.audio(folder, "a", seed=1)
        request = self.item(folder, "seeded", audio, seed=5)
        first, again = self.one(gen, request), self.one(gen, request)
        assert _same(first, again)
        reseeded = self.one(gen, dataclasses.replace(request, seed=6))
        assert _same(first, reseeded) != self.seeded


class FileInputConformance(GeneratorConformance):
    """The checks of an adapter that reads an audio file per item (:attr:`reads`: the vocal, the reference or a
    pre-generated output): bad files, the item's window, long files, other rates and channel counts."""

    # -- bad input --------------------------------------------------------------------------------------------------
    def test_bad_input_file_is_an_item_error_naming_it(self, gen: Generator, folder: Path) -> None:
        bad = folder / "bad"
        bad.mkdir(exist_ok=True)
        (bad / "empty.wav").write_bytes(b"")
        (bad / "not-audio.wav").write_text("this is not audio\n")
        requests = [self.item(folder, f"bad-{name}", bad / f"{name}.wav") for name in ("empty", "not-audio", "gone")]
        for request in requests:
            with pytest.raises(ItemError) as err:
                gen.generate([request])
            path = self.input_file(folder, request)
            named = str(path) if self.reads != "output" or path.exists() else str(path.parent)
            assert named in str(err.value), str(err.value)
        if self.reads == "reference":  # no file at all
            with pytest.raises(ItemError, match="no reference"):
                gen.generate([self.item(folder, "no-reference", None)])

    # -- the item's window ------------------------------------------------------------------------------------------
    def test_output_honours_the_items_window(self, gen: Generator, folder: Path) -> None:
        d = self.duration_s
        if self.reads == "output":  # the model's output, not the song: read from 0 whatever start_s says
            made = self.audio(folder, "made", seconds=d, seed=2)
            at_start, later = (self.item(folder, "window", made, start_s=s) for s in (0.0, 1.5 * d))
            out, out_later = self.one(gen, at_start), self.one(gen, later)
            assert _same(out, out_later)
            np.testing.assert_array_equal(out.audio, sf.read(made, dtype="float32", always_2d=True)[0].T)
            return
        song = self.audio(folder, "song", seconds=4 * d, seed=3)
        start = round(1.5 * d * 44_100)
        data, _ = sf.read(song, dtype="float32", always_2d=True)
        window = data[start: start + round(d * 44_100)]
        cut = folder / "inputs" / "song-window.wav"
        sf.write(cut, window, 44_100, subtype="FLOAT")
        windowed = self.item(folder, "window", song, start_s=start / 44_100)
        out = self.one(gen, windowed)
        assert out.audio.shape[1] == self.expected_samples(gen, windowed)
        if self.reads == "reference":  # exactly that window of the reference file
            np.testing.assert_array_equal(out.audio, window.T)
            np.testing.assert_array_equal(out.audio, load_window(song, start / 44_100, d).samples)
            return
        # The output depends on the window only: the same as for a file holding just the window, and not the same
        # as for the song's first seconds (so the vocal does condition the output).
        assert _same(out, self.one(gen, self.item(folder, "window", cut)))
        assert not _same(out, self.one(gen, self.item(folder, "window", song)))

    def test_input_ten_times_longer_than_the_item(self, gen: Generator, folder: Path) -> None:
        d = self.duration_s
        long = self.audio(folder, "long", seconds=10 * d, seed=4)
        start = 7 * d if self.reads != "output" else 0.0
        request = self.item(folder, "long", long, start_s=start)
        out = self.one(gen, request)
        assert out.audio.shape[1] == self.expected_samples(gen, request)
        data = sf.read(long, dtype="float32", always_2d=True)[0].T
        first = round(start * 44_100)
        if self.reads in ("reference", "output"):
            np.testing.assert_array_equal(out.audio, data[:, first: first + round(d * 44_100)])
        if self.reads == "output":  # cut to the item's duration, and said so
            assert out.info["source_duration_s"] == pytest.approx(10 * d, abs=1e-3)
            assert "cut to the item's" in out.info["duration_note"]

    @pytest.mark.parametrize(("rate", "channels"), [(48_000, 1), (22_050, 2)])
    def test_other_rates_and_channel_counts(self, gen: Generator, folder: Path, rate: int, channels: int) -> None:
        path = self.audio(folder, "rate", seconds=2 * self.duration_s, rate=rate, channels=channels, seed=5)
        start = 0.0 if self.reads == "output" else self.duration_s / 2
        request = self.item(folder, f"rate-{rate}", path, start_s=start)
        out = self.one(gen, request)
        if self.reads == "output":  # taken from 0, cut to the item, at 44.1 kHz stereo
            assert out.audio.shape == (2, round(self.duration_s * 44_100))
        else:
            assert out.audio.shape[1] == self.expected_samples(gen, request)
        if self.reads == "reference":
            np.testing.assert_array_equal(out.audio, load_window(path, start, self.duration_s).samples)
        if self.reads in ("reference", "output") and channels == 1:
            np.testing.assert_array_equal(out.audio[0], out.audio[1])

    def test_six_channels_need_downmix(self, gen: Generator, folder: Path) -> None:
        six = self.audio(folder, "six", channels=6, seed=6)
        request = self.item(folder, "six", six)
        with pytest.raises(ItemError) as err:
            gen.generate([request])
        message = str(err.value)
        assert str(self.input_file(folder, request)) in message and "6 channels" in message and "--downmix" in message
        out = self.one(gen, dataclasses.replace(request, downmix=True))
        assert out.audio.shape[1] == self.expected_samples(gen, request)


# ---- the cases ------------------------------------------------------------------------------------------------------
def _hub_cache() -> str:
    return os.environ["HF_HUB_CACHE"]


class TestSAMUeL(FileInputConformance):
    """A tiny checkpoint with a training record (read as trained weights) and a tiny diffusers VAE folder."""

    spec = "samuel"
    reads = "vocal"

    def build(self, weights: Path, folder: Path) -> Generator:
        checkpoint, vae = save_tiny_samuel(weights / "samuel")
        return registry.create("samuel", WeightsChoice("pretrained", source=str(checkpoint)), codec=str(vae), steps=2)

    def prepare(self, gen: Generator) -> None:
        # The tiny Oobleck's encoder runs 128 channels wide at 44.1 kHz: ~8 s a call on 2 cores. Loading it is
        # checked here (parameter counts) and the codec in test_codec.py; the generation checks use the projection
        # stand-in of tests/helpers.py, which has the same interface.
        gen._accompanist.codec = ProjectionCodec()

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        return [gen._accompanist.model, gen._accompanist.codec.vae]

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        checkpoint, vae = tmp / "no-such.safetensors", tmp / "no-such-vae"
        how = ["samuel train", "--weights-path samuel=", "https://huggingface.co/stabilityai/stable-audio-open-1.0"]
        return [
            (registry.create("samuel", WeightsChoice("pretrained", source=str(checkpoint)), codec=str(vae)),
             [str(checkpoint), str(vae), *how]),
            (registry.create("samuel", WeightsChoice("pretrained")), ["no checkpoint given", _hub_cache(), *how]),
        ]

    def auto_without_weights(self, tmp: Path) -> Generator:
        return registry.create("samuel", WeightsChoice("auto", source=str(tmp / "no-such.safetensors")))

    def test_a_vocal_window_cut_by_the_songs_end_counts_its_own_steps(self, gen: Generator, weights: Path,
                                                                      folder: Path) -> None:
        """A song that ends inside its item gives a shorter window, and SAMUeL's accompaniment is as long: its units
        (and an extrapolation's real-time factor) follow the window, not the item's duration."""
        short = self.audio(folder, "short", seconds=2.0, seed=3)
        request = GenerationRequest("cut", SEED, 8.0, PROMPT, vocal_path=short)
        assert gen.output_seconds(request) == 2.0
        steps = gen._settings(0).n_steps
        assert gen.total_units(request) == steps  # one 2.97 s chunk of the tiny preset, not the 8 s item's three
        ticks: list[int] = []
        out = self.one(gen, request, on_unit=lambda: ticks.append(1))
        assert len(ticks) == steps and out.audio.shape[1] == 2 * 44_100
        whole = GenerationRequest("whole", SEED, 8.0, PROMPT, vocal_path=self.audio(folder, "long", 8.0, seed=4))
        assert gen.output_seconds(whole) == 8.0 and gen.total_units(whole) == 3 * steps
        unloaded = self.build(weights, folder)  # counts with the checkpoint's chunk before loading too
        assert unloaded.total_units(whole) == 3 * steps and unloaded.total_units(request) == steps
        missing = GenerationRequest("missing", SEED, 8.0, PROMPT, vocal_path=folder / "no-such.wav")
        assert gen.output_seconds(missing) == 8.0  # generating it names the file

    def test_a_run_folder_is_read_as_its_model_safetensors(self, weights: Path, tmp_path: Path) -> None:
        import shutil

        checkpoint, vae = save_tiny_samuel(weights / "samuel")
        run = tmp_path / "run"
        run.mkdir()
        shutil.copy(checkpoint, run / "model.safetensors")
        status = registry.create("samuel", WeightsChoice("pretrained", source=str(run)), codec=str(vae)).status
        assert status.kind == "pretrained" and status.source == str(run / "model.safetensors")
        with pytest.raises(WeightsNotFoundError, match=r"a folder without model\.safetensors"):
            _ = registry.create("samuel", WeightsChoice("pretrained", source=str(tmp_path)), codec=str(vae)).status

    def test_a_vae_marked_random_makes_the_row_random(self, weights: Path, tmp_path: Path) -> None:
        """A trained checkpoint with the tiny random VAE (its marker file says random weights) was a "pretrained"
        row, scored in Table I, though `samuel generate` labels the same output RANDOM CODEC."""
        from samuel.codec import save_tiny_random_oobleck

        checkpoint, _ = save_tiny_samuel(weights / "samuel")
        marked = save_tiny_random_oobleck(tmp_path / "vae")
        auto = registry.create("samuel", WeightsChoice("auto", source=str(checkpoint)), codec=str(marked))
        assert auto.status.kind == "random" and f"the VAE at {marked} has random weights" in auto.status.message
        with pytest.raises(WeightsNotFoundError, match="has random weights"):
            _ = registry.create("samuel", WeightsChoice("pretrained", source=str(checkpoint)), codec=str(marked)).status

    def test_a_vae_other_than_the_checkpoints_is_refused_unless_allowed(self, weights: Path, folder: Path,
                                                                       tmp_path: Path) -> None:
        """A checkpoint whose training record names another VAE (samuel.generate.training_codec_mismatch) would
        fill Table I with scores of meaningless audio: the row fails to load, naming both VAEs and the way out;
        ``codec_mismatch=allow`` (the same weights in another file format) runs it and each sample records it."""
        import json

        from samuel.checkpoint import TRAINING_KEY, load_model, save_model

        checkpoint, vae = save_tiny_samuel(weights / "samuel")
        record = {"steps": 1, "data": {"codec": {"source": "/data/vae", "weights_sha256": "e" * 64}}}
        other = save_model(load_model(checkpoint), tmp_path / "other.safetensors",
                           extra_metadata={TRAINING_KEY: json.dumps(record)})
        refused = registry.create("samuel", WeightsChoice("pretrained", source=str(other)), codec=str(vae))
        with pytest.raises(AdapterError, match=r"VAE MISMATCH: .* /data/vae .*samuel\.codec_mismatch=allow"):
            _ = refused.status  # before anything is loaded
        allowed = registry.create("samuel", WeightsChoice("pretrained", source=str(other)), codec=str(vae),
                                  codec_mismatch="allow", steps=2)
        status = allowed.status
        assert status.kind == "pretrained" and status.caveat is not None and status.caveat.startswith("VAE MISMATCH")
        assert status.caveat in status.message and status.to_dict()["caveat"] == status.caveat
        allowed.load()
        # the check before loading read the files the load hashes: the loaded accompanist's own check agrees
        assert allowed._accompanist.codec_mismatch() == status.caveat
        sha = allowed._accompanist.codec.provenance()["weights_sha256"]
        self.prepare(allowed)
        out = self.one(allowed, self.item(folder, "mismatch", self.audio(folder, "v")))
        assert out.info["codec_mismatch"] == status.caveat
        # the record names the codec's own weights (its sha256 as the load computes it): no caveat, no refusal
        same = {"steps": 1, "data": {"codec": {"source": str(vae), "weights_sha256": sha}}}
        matching = save_model(load_model(checkpoint), tmp_path / "same.safetensors",
                              extra_metadata={TRAINING_KEY: json.dumps(same)})
        assert registry.create("samuel", WeightsChoice("pretrained", source=str(matching)),
                               codec=str(vae)).status.caveat is None
        with pytest.raises(ValueError, match="codec_mismatch must be 'refuse' or 'allow'"):
            registry.create("samuel", WeightsChoice("pretrained", source=str(other)), codec_mismatch="warn")


class _MusicGenCase(GeneratorConformance):
    melody: ClassVar[bool] = False

    def build(self, weights: Path, folder: Path) -> Generator:
        path = weights / ("musicgen-melody" if self.melody else "musicgen")
        if not path.exists():
            save_tiny_musicgen(path, melody=self.melody)
        return registry.create(self.spec, WeightsChoice("pretrained", source=str(path)))

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        return [gen._model]

    def expected_samples(self, gen: Generator, request: GenerationRequest) -> int:
        return int(request.duration_s * 50) * 640  # whole 50 Hz frames of the 32 kHz codec

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        repo = f"facebook/{self.spec}"
        return [
            (registry.create(self.spec, WeightsChoice("pretrained", source=str(tmp / "nowhere"))),
             [str(tmp / "nowhere"), f"huggingface-cli download {repo}", f"--weights-path {self.spec}="]),
            (registry.create(self.spec, WeightsChoice("pretrained")), [repo, _hub_cache(), "huggingface-cli download"]),
        ]

    def auto_without_weights(self, tmp: Path) -> Generator:
        return registry.create(self.spec, WeightsChoice("auto", source=str(tmp / "nowhere")))


class TestMusicGenSmall(_MusicGenCase):
    spec = "musicgen-small"


class TestMusicGenMedium(_MusicGenCase):
    spec = "musicgen-medium"


class TestMusicGenLarge(_MusicGenCase):
    spec = "musicgen-large"


class TestMusicGenMelody(_MusicGenCase, FileInputConformance):
    spec = "musicgen-melody"
    reads = "vocal"
    melody = True


class TestStableAudioOpen(GeneratorConformance):
    """A tiny random StableAudioPipeline saved with save_pretrained (8-sample hop, 64 Hz, 4 steps)."""

    spec = "stable-audio-open"

    def build(self, weights: Path, folder: Path) -> Generator:
        path = weights / "stable-audio-open"
        if not path.exists():
            save_tiny_stable_audio(path)
        return registry.create(self.spec, WeightsChoice("pretrained", source=str(path)), num_inference_steps=4)

    def output_rate(self, gen: Generator) -> int:
        return 64  # the tiny VAE's rate

    def expected_samples(self, gen: Generator, request: GenerationRequest) -> int:
        return int(request.duration_s * 64)  # the pipeline crops at int(audio_end_in_s * rate)

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        pipe = gen._pipe
        return [pipe.vae, pipe.text_encoder, pipe.transformer, pipe.projection_model]

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        from baselines.stable_audio import HUB_ID

        how = ["gated", "licence", f"hf download {HUB_ID}"]
        return [
            (registry.create(self.spec, WeightsChoice("pretrained", source=str(tmp / "nowhere"))),
             [str(tmp / "nowhere"), *how]),
            (registry.create(self.spec, WeightsChoice("pretrained")), [HUB_ID, _hub_cache(), *how]),
        ]

    def auto_without_weights(self, tmp: Path) -> Generator:
        return registry.create(self.spec, WeightsChoice("auto"))


class TestJukebox(GeneratorConformance):
    """Tiny checkpoints in jukebox-infer's layout (hops 2/4/8, 16-token windows); a 2 ms item samples 12 top-level
    tokens and runs both upsamplers."""

    spec = "jukebox"
    duration_s = 0.002

    def build(self, weights: Path, folder: Path) -> Generator:
        path = weights / "jukebox"
        if not path.exists():
            save_tiny_jukebox(path)
        return registry.create(self.spec, WeightsChoice("pretrained", source=str(path)), hparams=JUKEBOX_TINY)

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        return [gen._vqvae, *gen._priors]

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        files = ["5b/vqvae.pth.tar", "5b/prior_level_0.pth.tar", "5b/prior_level_1.pth.tar",
                 "5b_lyrics/prior_level_2.pth.tar"]
        how = ["https://openaipublic.azureedge.net/jukebox/models/", "download_checkpoints", "network is never used"]
        return [
            (registry.create(self.spec, WeightsChoice("pretrained", source=str(tmp / "nowhere"))),
             [str(tmp / "nowhere"), *files, *how]),
            (registry.create(self.spec, WeightsChoice("pretrained")),
             [str(Path(os.environ["HOME"]) / ".cache" / "jukebox" / "models"), *files, *how]),
        ]

    def auto_without_weights(self, tmp: Path) -> Generator:
        return registry.create(self.spec, WeightsChoice("auto", source=str(tmp)))


class _FilesCase(FileInputConformance):
    """Rows of audio files: a fresh adapter and folder per test, loaded at its first generate (after the test
    placed its files: the file index is built then)."""

    seeded = False
    has_model = False

    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        return tmp_path

    @pytest.fixture
    def gen(self, weights: Path, folder: Path) -> Generator:
        return self.build(weights, folder)


class TestReference(_FilesCase):
    spec = "reference"
    reads = "reference"

    def build(self, weights: Path, folder: Path) -> Generator:
        return registry.create("reference")

    def test_missing_weights_say_what_where_and_how(self, tmp_path: Path) -> None:
        # no weights to miss: the row rests on the files the manifest names, whatever the weights mode says
        for mode in ("auto", "pretrained", "random"):
            status = registry.create("reference", WeightsChoice(mode)).status
            assert status.kind == "files" and status.quality_ok


class TestPregeneratedOutputs(_FilesCase):
    spec = "outputs:elsewhere=DIR"
    reads = "output"

    def build(self, weights: Path, folder: Path) -> Generator:
        (folder / "outputs").mkdir(exist_ok=True)
        return registry.create(f"outputs:elsewhere={folder / 'outputs'}")

    def test_missing_weights_say_what_where_and_how(self, tmp_path: Path) -> None:
        # no weights: what can go missing is the folder, named in the error
        gen = registry.create(f"outputs:elsewhere={tmp_path / 'nowhere'}")
        with pytest.raises(AdapterError, match=f"{tmp_path / 'nowhere'}: no such folder"):
            _ = gen.status
        status = registry.create(f"outputs:elsewhere={tmp_path}").status
        assert status.kind == "files" and status.quality_ok and status.source == str(tmp_path)


class TestJukeboxFiles(_FilesCase):
    """Jukebox given a folder of its outputs made elsewhere: served by the file-name rule of baselines.files."""

    spec = "jukebox"
    reads = "output"

    def build(self, weights: Path, folder: Path) -> Generator:
        (folder / "outputs").mkdir(exist_ok=True)
        # one file from the start, so the folder resolves as audio files whatever a test places later
        write_signal(folder / "outputs" / "unrelated.wav", 0.05)
        return registry.create("jukebox", WeightsChoice("auto", source=str(folder / "outputs")), hparams=JUKEBOX_TINY)

    def test_missing_weights_say_what_where_and_how(self, tmp_path: Path) -> None:
        # a folder holding neither the checkpoints nor audio files: named in the message, with what it lacks
        with pytest.raises(WeightsNotFoundError) as err:
            _ = registry.create("jukebox", WeightsChoice("pretrained", source=str(tmp_path))).status
        assert str(tmp_path) in str(err.value) and "nor audio files" in str(err.value)
        status = self.build(tmp_path, tmp_path).status
        assert status.kind == "files" and status.quality_ok

    def test_parameter_counts_are_the_loaded_models_unique_sum(self, weights: Path, folder: Path) -> None:
        # the outputs' architecture is known: its counts (from the meta device) are the model's; nothing is loaded
        gen = self.build(weights, folder)
        assert gen.parameter_counts() == registry.create("jukebox", WeightsChoice("random"),
                                                         hparams=JUKEBOX_TINY).parameter_counts()
        self.one(gen, self.item(folder, "made", self.audio(folder, "made")))
        assert gen._vqvae is None and gen._priors == []


CASES: tuple[type[GeneratorConformance], ...] = (
    TestSAMUeL, TestMusicGenSmall, TestMusicGenMedium, TestMusicGenLarge, TestMusicGenMelody, TestStableAudioOpen,
    TestJukebox, TestReference, TestPregeneratedOutputs, TestJukeboxFiles)


def test_every_registered_generator_has_a_case() -> None:
    shipped = {n for n in registry.names() if registry.resolve_class(n).__module__.startswith("baselines.")}
    covered = {case.spec for case in CASES}
    assert shipped <= covered, f"no conformance case for {sorted(shipped - covered)}"
    assert any(spec.startswith(registry.OUTPUTS_PREFIX) for spec in covered)


class TestAceStep(FileInputConformance):
    """A tiny random AceStepPipeline saved with save_pretrained (48 kHz, the real 1920-sample hop, 2 steps): the
    vocal is the source audio of the `complete` task."""

    spec = "ace-step"
    reads = "vocal"

    def build(self, weights: Path, folder: Path) -> Generator:
        from tiny_generators import save_tiny_ace_step

        path = weights / "ace-step"
        if not path.exists():
            save_tiny_ace_step(path)
        return registry.create(self.spec, WeightsChoice("pretrained", source=str(path)), num_inference_steps=2)

    def loaded_modules(self, gen: Generator) -> list[torch.nn.Module]:
        pipe = gen._pipe
        return [pipe.transformer, pipe.condition_encoder, pipe.text_encoder, pipe.vae, pipe.audio_tokenizer,
                pipe.audio_token_detokenizer]

    def missing_weights(self, tmp: Path) -> list[tuple[Generator, list[str]]]:
        from baselines.ace_step import HUB_ID

        how = [f"hf download {HUB_ID}"]
        return [
            (registry.create(self.spec, WeightsChoice("pretrained", source=str(tmp / "nowhere"))),
             [str(tmp / "nowhere"), *how]),
            (registry.create(self.spec, WeightsChoice("pretrained")), [HUB_ID, _hub_cache(), *how]),
        ]

    def auto_without_weights(self, tmp: Path) -> Generator:
        return registry.create(self.spec, WeightsChoice("auto"))


CASES = (*CASES, TestAceStep)
