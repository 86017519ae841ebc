"""MusicGen adapters: parity with transformers' own generate (fp32 and bf16), the static KV cache's tokens equal to
the dynamic cache's, chroma parity without torchaudio, golden parameter counts and memory estimates, the tokenizer
a folder must hold, the delay pattern's cut, and the precision / cache options. Tiny random models saved in the
transformers format (tests/tiny_generators.py); no network. The checks every generator passes (missing weights, unit
hooks, bad vocals, the item's window, batch = single, seeds) are in test_generator_conformance.py."""

from __future__ import annotations

import copy
import dataclasses
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_generators import musicgen_tiny_config as tiny_config
from tiny_generators import one_torch_thread
from tiny_generators import save_tiny_musicgen as save_tiny

from baselines.base import AdapterError, GenerationRequest, WeightsChoice
from baselines.chroma import ChromaSettings, PowerSpectrogram, melody_chroma, power_spectrogram, to_model_rate
from baselines.musicgen import (
    DEFAULT_CACHE,
    InferenceSettings,
    MusicGenLarge,
    MusicGenMedium,
    MusicGenMelody,
    MusicGenSmall,
    component_counts,
    published_config,
)

SEED = 1234
SAMPLING = {"do_sample": True, "guidance_scale": 3.0, "top_k": 250, "temperature": 1.0}
# 0.26 s at the tiny codec's 50 Hz -> 13 frames, + 3 codebook delays = 16 autoregressive steps
DURATION_S = 0.26


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    with one_torch_thread():
        yield


def request(**kw) -> GenerationRequest:
    defaults = {"item_id": "item-0", "seed": SEED, "duration_s": DURATION_S, "prompt": "calm piano with soft drums"}
    return GenerationRequest(**{**defaults, **kw})


def write_vocal(path: Path, seconds: float = 1.5, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * (t ** 1.1))
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1).astype(np.float32), rate, subtype="FLOAT")
    return path


def patched_feature_extractor(monkeypatch: pytest.MonkeyPatch):
    """transformers' MusicgenMelodyFeatureExtractor, whose torchaudio Spectrogram is replaced by ours (the rest:
    padding, filter bank, normalisation and one-hot, is its own code)."""
    import transformers.models.musicgen_melody.feature_extraction_musicgen_melody as fe_module

    fake = types.SimpleNamespace(transforms=types.SimpleNamespace(Spectrogram=PowerSpectrogram))
    monkeypatch.setattr(fe_module, "torchaudio", fake, raising=False)
    return fe_module.MusicgenMelodyFeatureExtractor()


def as_adapter_runs_it(model, dtype: str):
    """A copy of ``model`` cast as the adapter casts it: everything in ``dtype`` but EnCodec, which stays fp32."""
    ref = copy.deepcopy(model).to(getattr(torch, dtype))
    ref.audio_encoder.float()
    return ref


# ---- parity with transformers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_text_parity_with_transformers_generate(tmp_path: Path, dtype: str) -> None:
    model, tokenizer = save_tiny(tmp_path / "tiny")
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")), dtype=dtype)
    assert adapter.status.kind == "pretrained"
    (out,) = adapter.generate([request()])
    model = as_adapter_runs_it(model, dtype)

    steps = adapter.total_units(request())
    assert steps == 13 + 3
    inputs = tokenizer(["calm piano with soft drums"], return_tensors="pt", padding=True)
    torch.manual_seed(SEED)
    ref = model.generate(**inputs, **SAMPLING, max_new_tokens=steps)[0].numpy()
    assert out.sample_rate == 32_000 and out.audio.dtype == np.float32
    assert out.audio.shape == ref.shape == (1, 13 * 640)
    np.testing.assert_array_equal(out.audio, ref)
    assert out.info["units_done"] == steps and out.info["text_tokens"] == 6 and out.info["sampling"]["top_k"] == 250


def test_melody_parity_with_transformers_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = save_tiny(tmp_path / "tiny", melody=True)
    patched_feature_extractor(monkeypatch).save_pretrained(tmp_path / "tiny")  # preprocessor_config.json
    vocal = write_vocal(tmp_path / "vocal.wav")
    adapter = MusicGenMelody(WeightsChoice("pretrained", source=str(tmp_path / "tiny")), dtype="float32")
    (out,) = adapter.generate([request(vocal_path=vocal, start_s=0.5)])

    from samuel.audio import load_window

    wav = to_model_rate(load_window(vocal, 0.5, DURATION_S).samples, 44_100, 32_000)  # the item's window only
    features = patched_feature_extractor(monkeypatch)(wav, sampling_rate=32_000, return_tensors="pt")
    inputs = tokenizer(["calm piano with soft drums"], return_tensors="pt", padding=True)
    torch.manual_seed(SEED)
    ref = model.generate(**inputs, input_features=features["input_features"], **SAMPLING,
                         max_new_tokens=adapter.total_units(request()))[0].numpy()
    np.testing.assert_array_equal(out.audio, ref)
    assert out.info["chroma_frames"] == 1 + 16_384 // 4096  # 0.26 s at 32 kHz, zero-padded to n_fft, hop 4096
    assert out.info["vocal_window_s"] == [0.5, 0.5 + DURATION_S]
    assert adapter.conditioning == "Vocal + Text" and adapter.uses_vocal
    assert "torchaudio" not in sys.modules


# ---- chroma without torchaudio -----------------------------------------------------------------------------------
def test_power_spectrogram_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    wave = rng.standard_normal((2, 3000)).astype(np.float64)
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft, dtype=torch.float64)
    ours = power_spectrogram(torch.from_numpy(wave), window, n_fft=n_fft, hop_length=hop, normalized=True).numpy()

    padded = np.pad(wave, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")  # center=True, reflect
    n_frames = 1 + (padded.shape[1] - n_fft) // hop
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = np.stack([padded[:, i * hop: i * hop + n_fft] * win for i in range(n_frames)], axis=-1)
    ref = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / np.sum(win ** 2)  # (2, freq, frames), window-normalised
    assert ours.shape == ref.shape == (2, n_fft // 2 + 1, n_frames)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_chroma_matches_transformers_feature_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    fe = patched_feature_extractor(monkeypatch)
    rng = np.random.default_rng(1)
    settings = ChromaSettings()
    for length in (20_000, 100_000):  # shorter than n_fft (centred in zeros) and longer
        wav = rng.standard_normal(length).astype(np.float32) * 0.1
        ref = fe(wav, sampling_rate=32_000, return_tensors="pt")["input_features"]
        ours = melody_chroma([wav], settings)
        assert ours.shape == ref.shape == (1, 1 + max(length, settings.n_fft) // 4096, 12)
        torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    # a batch: truncated to 30 s, zero-padded to the longest, as the extractor does
    batch = [rng.standard_normal(n).astype(np.float32) for n in (31 * 32_000, 40_000)]
    ref = fe(batch, sampling_rate=32_000, return_tensors="pt")["input_features"]
    ours = melody_chroma(batch, settings)
    assert ours.shape[1] == 235  # MusicgenMelodyConfig.chroma_length
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    assert "torchaudio" not in sys.modules


# ---- parameter counts --------------------------------------------------------------------------------------------
def test_component_split_covers_every_parameter() -> None:
    """The per-component split (the total is the conformance suite's check): each component's unique parameters."""
    from baselines.musicgen import model_class

    for melody in (False, True):
        model = model_class(melody)(tiny_config(melody))
        counts = component_counts(model)
        for name, module in (("text_encoder", model.text_encoder), ("codec", model.audio_encoder),
                             ("lm", model.decoder)):
            assert counts.by_component[name] == sum({id(p): p.numel() for p in module.parameters()}.values())
        assert ("audio_enc_to_dec_proj" in counts.by_component) == melody


# Golden counts of the embedded published configs (baselines/musicgen.py: decoder sizes from transformers'
# convert_musicgen*_transformers.py, T5-base, EnCodec 32 kHz from convert_encodec_checkpoint_to_pytorch.py),
# computed on the meta device with transformers 5.23. The nominal sizes (300M / 1.5B / 3.3B / 1.5B) are the
# papers' round names; the transformers decoders, cross-attention included, hold 420M / 1.84B / 3.26B / 1.38B.
CODEC, T5 = 56_884_674, 109_628_544
GOLDEN = {
    "small": {"codec": CODEC, "text_encoder": T5, "lm": 419_584_000, "enc_to_dec_proj": 787_456},
    "medium": {"codec": CODEC, "text_encoder": T5, "lm": 1_837_556_736, "enc_to_dec_proj": 1_181_184},
    "large": {"codec": CODEC, "text_encoder": T5, "lm": 3_255_382_016, "enc_to_dec_proj": 1_574_912},
    "melody": {"codec": CODEC, "text_encoder": T5, "lm": 1_384_424_448, "enc_to_dec_proj": 1_181_184,
               "audio_enc_to_dec_proj": 19_968},
}


@pytest.mark.parametrize("cls", [MusicGenSmall, MusicGenMedium, MusicGenLarge, MusicGenMelody])
def test_published_counts_are_golden(cls) -> None:
    counts = cls(WeightsChoice("random")).parameter_counts()
    assert counts.by_component == GOLDEN[cls.size]
    assert counts.total == {"small": 586_884_674, "medium": 2_005_251_138, "large": 3_423_470_146,
                            "melody": 1_552_138_818}[cls.size]
    lm = counts.by_component["lm"]
    assert {"small": 0.3e9 < lm < 0.45e9, "medium": 1.5e9 < lm < 2.0e9, "large": 3.0e9 < lm < 3.4e9,
            "melody": 1.3e9 < lm < 1.6e9}[cls.size]


def test_published_config_architecture() -> None:
    config = published_config("small")
    assert config.audio_encoder.frame_rate == 50 and config.audio_encoder.num_quantizers == 4
    assert config.decoder.num_codebooks == 4 and config.decoder.vocab_size == 2048
    assert published_config("melody").chroma_length == 235


# ---- weights resolution ------------------------------------------------------------------------------------------
def test_folder_without_tokenizer_says_so(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny", with_tokenizer=False)
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    with pytest.raises(AdapterError, match=r"no usable text tokenizer \(none of tokenizer\.json"):
        adapter.load()


# ---- timing hooks ------------------------------------------------------------------------------------------------
def test_max_units_cuts_frames_by_the_delay_pattern(tmp_path: Path) -> None:
    """A cap of k steps keeps k - 3 frames (4 codebooks, delayed by 0..3 steps); below transformers' delay pattern
    (2 x 3 steps) the hook stops the run and the audio is empty. Tick counts are the conformance suite's check."""
    save_tiny(tmp_path / "tiny")
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    ticks: list[int] = []
    for cap, frames in ((9, 6), (2, 0)):
        ticks.clear()
        (out,) = adapter.generate([request()], max_units=cap, on_unit=lambda: ticks.append(1))
        assert len(ticks) == cap and out.info["units_done"] == cap and out.info["truncated"]
        assert out.audio.shape == (1, frames * 640)


def test_random_weights_generate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random init builds the published architecture; here the tiny config stands in for it to stay fast."""
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    adapter = MusicGenSmall(WeightsChoice("random"), top_k=10)
    (a,) = adapter.generate([request(prompt="an unknown prompt")])
    (b,) = MusicGenSmall(WeightsChoice("random"), top_k=10).generate([request(prompt="an unknown prompt")])
    assert adapter.status.is_random and a.info["weights"] == "random"
    np.testing.assert_array_equal(a.audio, b.audio)  # seeded init + seeded sampling
    assert a.audio.shape == (1, 13 * 640) and np.isfinite(a.audio).all()


def test_random_weights_decode_each_code_to_its_own_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers initialises EnCodec's codebooks to zeros: every token sequence then decodes to the same audio,
    and a random MusicGen-Melody looked deaf to its vocal in the plumbing probe. The adapter draws them."""
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    adapter = MusicGenSmall(WeightsChoice("random"))
    adapter.load()
    model = adapter._model
    for layer in model.audio_encoder.quantizer.layers:
        assert float(layer.codebook.embed.std()) > 0.5  # N(0, 1), not zeros
    codes = torch.zeros(1, 1, 4, 8, dtype=torch.long)
    other = codes.clone()
    other[..., 3] = 5  # one frame's codes changed
    with torch.no_grad():
        same = model.audio_encoder.decode(codes, [None]).audio_values
        changed = model.audio_encoder.decode(other, [None]).audio_values
    assert float((same - changed).abs().max()) > 1e-3
    # without the draw (transformers' own init) the change would be inaudible: the check above has teeth
    fresh = mg.model_class(False)(tiny_config(False)).eval()
    with torch.no_grad():
        assert torch.equal(fresh.audio_encoder.decode(codes, [None]).audio_values,
                           fresh.audio_encoder.decode(other, [None]).audio_values)


# ---- precision and KV cache ----------------------------------------------------------------------------------------
# fp32: seeded sampling (audiocraft's defaults). bf16: greedy, because there the two caches' attention rounds
# differently (the static one also sums over its masked, preallocated positions): logits differ by one bf16 step
# (~1.6e-2 at this model's scale), which can move a sampled token that sits on a boundary of the draw.
@pytest.mark.parametrize(("dtype", "sampling"), [("float32", {}), ("bfloat16", {"do_sample": False})],
                         ids=["fp32-sampled", "bf16-greedy"])
@pytest.mark.parametrize("melody", [False, True], ids=["text", "melody"])
def test_static_cache_gives_the_dynamic_caches_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str,
                                                       sampling: dict, melody: bool) -> None:
    """A static cache and the preallocated one give the same audio, hence the same tokens (EnCodec is
    deterministic), as transformers' dynamic cache, whole and cut by max_units."""
    save_tiny(tmp_path / "tiny", melody=melody)
    cls, req = MusicGenSmall, request()
    if melody:
        patched_feature_extractor(monkeypatch).save_pretrained(tmp_path / "tiny")
        cls, req = MusicGenMelody, request(vocal_path=write_vocal(tmp_path / "vocal.wav"))
    runs = {}
    for cache in ("dynamic", "static", "preallocated"):
        adapter = cls(WeightsChoice("pretrained", source=str(tmp_path / "tiny")), dtype=dtype,
                      cache_implementation=cache, **sampling)
        runs[cache] = adapter.generate([req]) + adapter.generate([req], max_units=9)
        assert runs[cache][0].info["inference"]["cache_implementation"] == cache
    for dynamic, static, preallocated in zip(runs["dynamic"], runs["static"], runs["preallocated"], strict=True):
        assert dynamic.audio.shape[1] > 0
        np.testing.assert_array_equal(static.audio, dynamic.audio)
        np.testing.assert_array_equal(preallocated.audio, dynamic.audio)


def test_the_preallocated_layer_behaves_as_the_dynamic_one() -> None:
    """Update by update, the preallocated layer returns what transformers' DynamicLayer returns (values, lengths,
    the mask's sizes), writing in place into one storage; cropping, resetting, a batch reorder and a run longer than
    its storage keep the dynamic layer's results (the last two by concatenating)."""
    from transformers.cache_utils import DynamicLayer

    from baselines.musicgen import preallocated_layer_class

    draw = torch.Generator().manual_seed(0)

    def states(batch: int, length: int) -> torch.Tensor:
        return torch.randn(batch, 2, length, 4, generator=draw)

    layer, dynamic = preallocated_layer_class()(max_cache_len=6), DynamicLayer()

    def step(k: torch.Tensor, v: torch.Tensor) -> None:
        got, want = layer.update(k, v), dynamic.update(k, v)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
        assert layer.get_seq_length() == dynamic.get_seq_length()
        assert layer.get_mask_sizes(1) == dynamic.get_mask_sizes(1)

    step(states(2, 3), states(2, 3))  # a prefill of 3
    storage = layer._storage[0].data_ptr()
    step(states(2, 1), states(2, 1))
    assert layer.keys.data_ptr() == storage  # written in place, from the first position
    layer.crop(-2), dynamic.crop(-2)
    step(states(2, 1), states(2, 1))
    layer.reset(), dynamic.reset()
    step(states(2, 2), states(2, 2))
    assert layer._storage[0].data_ptr() == storage  # kept across reset for the next generation
    layer.batch_repeat_interleave(2), dynamic.batch_repeat_interleave(2)
    step(states(4, 1), states(4, 1))  # keys replaced by the reorder: concatenates
    fresh, grown = preallocated_layer_class()(max_cache_len=2), DynamicLayer()
    for length in (2, 1):  # past its 2 positions: concatenates
        k, v = states(2, length), states(2, length)
        for g, w in zip(fresh.update(k, v), grown.update(k, v), strict=True):
            torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.slow
def test_a_compiled_static_cache_gives_the_same_audio(tmp_path: Path) -> None:
    """``compile=True``: transformers compiles the decoding step (dynamo captures graphs; the option alone does not
    compile on a CPU) and the fp32 audio, whole and cut by max_units, equals the uncompiled static cache's. About
    40 s: compiling costs the same for the tiny decoder as for far more of it."""
    import torch._dynamo

    save_tiny(tmp_path / "tiny")
    runs = {}
    for compiled in (False, True):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")), dtype="float32",
                                cache_implementation="static", compile=compiled, do_sample=False)
        runs[compiled] = adapter.generate([request()]) + adapter.generate([request()], max_units=9)
        assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) is compiled
        assert runs[compiled][0].info["precision"].endswith("compiled") is compiled
    for eager, compiled_out in zip(runs[False], runs[True], strict=True):
        assert eager.audio.shape[1] > 0
        np.testing.assert_array_equal(compiled_out.audio, eager.audio)


def test_transformers_ignores_cache_implementation_and_prefills_twice(tmp_path: Path) -> None:
    """The two transformers 5.24 behaviours the static path works around (baselines/musicgen.py's module doc):
    ``generate(cache_implementation="static")`` still decodes on a DynamicCache, and ``generate`` runs its prefill
    twice. When this fails, transformers changed: the workaround in ``_passed_cache`` may be dropped."""
    from transformers.cache_utils import DynamicCache

    model, tokenizer = save_tiny(tmp_path / "tiny")
    inputs = tokenizer(["calm piano"], return_tensors="pt")
    prefills: list[int] = []
    prefill = model._prefill
    model._prefill = lambda *a, **k: prefills.append(1) or prefill(*a, **k)
    out = model.generate(**inputs, do_sample=False, max_new_tokens=8, cache_implementation="static",
                         return_dict_in_generate=True)
    assert type(out.cache.self_attention_cache) is DynamicCache
    assert len(prefills) == 2



def _needs_bf16_prepack() -> None:
    from baselines.musicgen import prepack_unavailable_reason

    if (why := prepack_unavailable_reason("bfloat16")) is not None:
        pytest.skip(why)  # an AVX2-only CPU: test_prepack_is_left_off_where_onednn_cannot_run_it covers it


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("rows", "features", "bias"), [((2, 1), (64, 256), False), ((1, 7, 3), (96, 40), True),
                                                        ((300,), (128, 128), False)])
def test_a_prepacked_linear_computes_nn_linear(dtype: torch.dtype, rows: tuple, features: tuple,
                                               bias: bool) -> None:
    """oneDNN's prepacked linear against ``nn.Linear`` on the same weights, any leading shape, whatever the rows
    hint: within one rounding step of the dtype (on an AMX Xeon bit-identical; docs/benchmarks.md)."""
    from baselines.musicgen import prepacked_linear_class

    if dtype == torch.bfloat16:
        _needs_bf16_prepack()

    torch.manual_seed(0)
    linear = torch.nn.Linear(*features, bias=bias).to(dtype)
    x = torch.randn(*rows, features[0], dtype=dtype)
    packed = prepacked_linear_class()(linear, rows=2)
    assert not list(packed.parameters())  # an opaque oneDNN tensor: nothing for .to() or a state dict to touch
    with torch.no_grad():
        expected, got = linear(x), packed(x)
    assert got.shape == expected.shape and got.dtype == dtype
    tol = {"rtol": 1.6e-2, "atol": 1e-2} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(got, expected, **tol)



def test_prepack_linears_replaces_exactly_nn_linear() -> None:
    """Only ``nn.Linear`` itself: a subclass (here ``nn.MultiheadAttention``'s ``out_proj``, whose owner reads
    ``.weight``) stays, and the module still runs."""
    from baselines.musicgen import prepack_linears, prepacked_linear_class

    model = torch.nn.ModuleDict({"mlp": torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(),
                                                            torch.nn.Linear(8, 8)),
                                 "attn": torch.nn.MultiheadAttention(8, 2, batch_first=True)}).eval()
    assert prepack_linears(model) == 2
    assert all(type(m) is prepacked_linear_class() for m in (model["mlp"][0], model["mlp"][2]))
    assert type(model["attn"].out_proj) is not prepacked_linear_class()
    x = torch.randn(1, 3, 8)
    with torch.no_grad():
        assert model["attn"](x, x, x)[0].shape == (1, 3, 8) and model["mlp"](x).shape == (1, 3, 8)

def test_prepack_replaces_every_decoder_linear_and_keeps_the_logits(tmp_path: Path) -> None:
    """``prepack=True``: no ``nn.Linear`` is left in the decoder, the text encoder keeps its own, the decoder's
    logits over a teacher-forced sequence stay within one bf16 step of the plain model's, generation runs and
    Table II's label and the sidecar say so."""
    from baselines.musicgen import prepacked_linear_class

    _needs_bf16_prepack()
    save_tiny(tmp_path / "tiny")
    adapters = {prepack: MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")),
                                       dtype="bfloat16", prepack=prepack, do_sample=False)
                for prepack in (False, True)}
    for adapter in adapters.values():
        adapter.load()
    packed = adapters[True]._model
    decoder_kinds = {type(m) for m in packed.decoder.modules()}
    assert torch.nn.Linear not in decoder_kinds and prepacked_linear_class() in decoder_kinds
    assert any(isinstance(m, torch.nn.Linear) for m in packed.text_encoder.modules())
    codebooks = packed.decoder.num_codebooks
    draw = torch.Generator().manual_seed(1)
    codes = torch.randint(0, packed.config.decoder.vocab_size, (codebooks, 6), generator=draw)
    logits = {}
    for prepack, adapter in adapters.items():
        text = adapter._tokenizer([request().prompt], return_tensors="pt")
        with torch.no_grad():
            logits[prepack] = adapter._model(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                                             decoder_input_ids=codes).logits.float()
    torch.testing.assert_close(logits[True], logits[False], rtol=1.6e-2, atol=2e-2)
    out = adapters[True].generate([request()], max_units=9)[0]
    assert out.audio.shape[1] > 0 and np.isfinite(out.audio).all()
    assert out.info["precision"] == "bf16 (EnCodec in fp32), preallocated KV cache, oneDNN prepacked linears"
    assert out.info["inference"]["prepack"] is True and out.info["inference"]["chosen_by"]["prepack"] == "option"

def test_prepack_is_left_off_where_onednn_cannot_run_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU whose oneDNN has no bf16 linear (AVX2 only: the reorder raises): ``auto`` leaves prepacking off and
    bf16 still runs; ``prepack=True`` is refused at construction with oneDNN's reason, not at load with its
    RuntimeError. fp32 prepacking runs on any x86 CPU with oneDNN."""
    import baselines.musicgen as bm
    import samuel.generate as sg

    assert bm.prepack_unavailable_reason("float32") is None and bm.prepack_available()
    monkeypatch.setattr(sg, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    why = "oneDNN cannot prepack a bfloat16 linear on this CPU (bf16 path needs the cpu support avx512bw)"
    monkeypatch.setattr(bm, "prepack_unavailable_reason", lambda dtype: why if dtype == "bfloat16" else None)
    adapter = MusicGenSmall(WeightsChoice("random"))
    assert adapter.inference.dtype == "bfloat16" and adapter.inference.prepack is False
    assert adapter.precision() == "bf16 (EnCodec in fp32), preallocated KV cache"
    with pytest.raises(AdapterError, match=r"prepack asked for, but oneDNN cannot prepack a bfloat16 linear"):
        MusicGenSmall(WeightsChoice("random"), dtype="bfloat16", prepack=True)
    assert MusicGenSmall(WeightsChoice("random"), dtype="float32", prepack=True).inference.prepack is True


def test_inference_options_resolve_per_device_and_label_table_ii(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto``: bf16 where the device computes it natively (a CPU with AVX512-BF16 / AMX, a CUDA GPU that supports
    it), else fp32; the preallocated cache on a CPU, the dynamic one on a GPU; oneDNN's prepacked linears for bf16 on
    a CPU. Given options stand, and the record says which decided."""
    import torch

    import baselines.musicgen as bm
    import samuel.generate as sg

    monkeypatch.setattr(sg, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    monkeypatch.setattr(bm, "prepack_available", lambda dtype="float32": True)
    cpu = MusicGenSmall(WeightsChoice("random"))
    assert (cpu.inference.dtype, cpu.inference.cache_implementation) == ("bfloat16", DEFAULT_CACHE) == ("bfloat16",
                                                                                                        "preallocated")
    assert cpu.precision() == "bf16 (EnCodec in fp32), preallocated KV cache, oneDNN prepacked linears"
    assert cpu.bytes_per_param() == 2
    assert cpu._inference_chosen_by == {"dtype": "auto on cpu", "cache_implementation": "auto on cpu",
                                        "compile": "auto on cpu", "prepack": "auto on cpu"}
    assert (cpu.inference.compile, cpu.inference.prepack) == (False, True)
    monkeypatch.setattr(bm, "prepack_available", lambda dtype="float32": False)  # a torch without oneDNN
    assert MusicGenSmall(WeightsChoice("random")).precision() == "bf16 (EnCodec in fp32), preallocated KV cache"
    monkeypatch.setattr(bm, "prepack_available", lambda dtype="float32": True)
    monkeypatch.setattr(sg, "cpu_has_native_bf16", lambda cpuinfo=None: False)  # bf16 emulated: no faster
    assert MusicGenSmall(WeightsChoice("random")).inference.dtype == "float32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda = MusicGenSmall(WeightsChoice("random"), device="cuda:1")  # construction touches no device
    assert (cuda.inference.dtype, cuda._inference_chosen_by["dtype"]) == ("bfloat16", "auto on cuda:1")
    assert (cuda.inference.prepack, cuda.inference.cache_implementation) == (False, "dynamic")  # not measured there
    mixed = MusicGenSmall(WeightsChoice("random"), dtype="bfloat16", cache_implementation="static")
    assert mixed.precision() == "bf16 (EnCodec in fp32), static KV cache, oneDNN prepacked linears"
    assert MusicGenSmall(WeightsChoice("random"), dtype="bfloat16", cache_implementation="static",
                         prepack=False).precision() == "bf16 (EnCodec in fp32), static KV cache"
    fp32 = MusicGenSmall(WeightsChoice("random"), dtype="float32", cache_implementation="auto")
    assert fp32.precision() == "fp32, preallocated KV cache" and fp32.bytes_per_param() == 4
    assert fp32._inference_chosen_by == {"dtype": "option", "cache_implementation": "auto on cpu",
                                         "compile": "auto on cpu", "prepack": "auto on cpu"}
    assert MusicGenSmall(WeightsChoice("random"), dtype="float32", prepack=True).precision() == (
        "fp32, preallocated KV cache, oneDNN prepacked linears")  # asked for: fp32 gained nothing, but it runs
    assert InferenceSettings("auto", "static").resolved("cpu") == InferenceSettings("float32", "static", False, False)
    # compile: the static cache's option; ``auto`` cache follows it, an explicit dynamic one is refused
    compiled = MusicGenSmall(WeightsChoice("random"), dtype="bfloat16", compile=True)
    assert compiled.inference == InferenceSettings("bfloat16", "static", True, False)  # no prepack with compile
    assert compiled.precision() == "bf16 (EnCodec in fp32), static KV cache, compiled"
    assert InferenceSettings(cache_implementation="dynamic").resolved("cpu").compile is False
    for bad, message in (({"cache_implementation": "dynamic", "compile": True}, "compile needs"),
                         ({"cache_implementation": "preallocated", "compile": True}, "compile needs"),
                         ({"compile": "yes"}, "compile must be"), ({"compile": 1}, "compile must be"),
                         ({"prepack": "on"}, "prepack must be"), ({"prepack": True, "compile": True}, "exclude"),
                         ({"prepack": True, "dtype": "float16"}, "bfloat16 or float32")):
        with pytest.raises(AdapterError, match=message):
            MusicGenSmall(WeightsChoice("random"), **bad)
    with pytest.raises(AdapterError, match="prepack is a CPU path"):
        MusicGenSmall(WeightsChoice("random"), device="cuda", prepack=True)


@pytest.mark.parametrize(("options", "message"), [
    ({"dtype": "fp8"}, r"musicgen-small: dtype must be one of \['float32', 'bfloat16', 'float16', 'auto'\], got 'fp8'"),
    ({"cache_implementation": "sliding"}, r"musicgen-small: cache_implementation must be one of .*got 'sliding'"),
    ({"dtpye": "float32"}, r"musicgen-small: unknown options \['dtpye'\]; known: .*'cache_implementation'"),
    ({"preset": "huge"}, r"musicgen-small: preset must be one of \['published', 'tiny'\], got 'huge'"),
])
def test_bad_inference_options_are_refused_by_name(options: dict, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        MusicGenSmall(WeightsChoice("random"), **options)


def test_memory_estimate_is_golden() -> None:
    """EnCodec's parameters at 4 bytes and the rest at the dtype's, + 25%, plus the KV cache of 2,381 steps
    (24 layers x keys and values x 2 guidance rows x 1024 wide): exact figures for musicgen-small."""
    total, codec = 586_884_674, CODEC
    kv_values = 24 * 2 * 2 * (2377 + 4) * 1024
    for dtype, size in (("float32", 4), ("bfloat16", 2)):
        adapter = MusicGenSmall(WeightsChoice("random"), dtype=dtype)
        assert adapter.memory_estimate_bytes() == int(((total - codec) * size + codec * 4) * 1.25) + kv_values * size


def test_generation_records_its_precision_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    adapter = MusicGenSmall(WeightsChoice("random"), cache_implementation="static")
    (out,) = adapter.generate([request()])
    dtype = adapter.inference.dtype  # auto: this machine's
    assert out.info["inference"] == {"dtype": dtype, "cache_implementation": "static", "compile": False,
                                     "prepack": dtype == "bfloat16" and mg.prepack_available(dtype),
                                     "chosen_by": {"dtype": "auto on cpu", "cache_implementation": "option",
                                                   "compile": "auto on cpu", "prepack": "auto on cpu"}}
    assert out.info["precision"] == adapter.precision()
    assert next(adapter._model.decoder.parameters()).dtype == getattr(torch, dtype)
    assert next(adapter._model.audio_encoder.parameters()).dtype == torch.float32


@pytest.mark.parametrize("cache", ["dynamic", "static", "preallocated"])
@pytest.mark.parametrize("cls", [MusicGenSmall, MusicGenMelody])
def test_decoder_step_seconds(monkeypatch: pytest.MonkeyPatch, cls, cache: str) -> None:
    """One positive time per position, on either cache, text- or melody-conditioned; a position outside the run is
    refused."""
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "DEFAULT_DURATION_S", 1.0)  # 50 frames + 3 delays: positions up to 53
    adapter = cls(WeightsChoice("random"), cache_implementation=cache, preset="tiny")
    seconds = adapter.decoder_step_seconds([1, 52], repeats=2)
    assert sorted(seconds) == [1, 52] and all(0 < s < 10 for s in seconds.values())
    with pytest.raises(ValueError, match=r"position must be in \[1, 54\), got 54"):
        adapter.decoder_step_seconds([54])


def test_tiny_preset_is_random_and_the_test_twin() -> None:
    """The tiny preset (smoke runs) is random whatever the weights asked for, and is the config the tests build."""
    from baselines.musicgen import model_class
    from baselines.musicgen import tiny_config as preset_config

    for melody in (False, True):
        assert preset_config(melody).to_dict() == tiny_config(melody).to_dict()
    adapter = MusicGenSmall(WeightsChoice("pretrained"), preset="tiny")
    assert adapter.status.is_random and "tiny preset" in adapter.status.message
    assert adapter.parameter_counts() == component_counts(model_class(False)(preset_config()))
    assert "tiny preset" in adapter.parameter_source()


def test_precision_distance_compares_with_a_fresh_fp32_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 against the fp32 model built again (same seed): finite SNRs per stage, well above 0 dB and below exact;
    None in fp32. The stages are those the timing pass records beside the time (Table II)."""
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    assert MusicGenSmall(WeightsChoice("random"), dtype="float32").precision_distance(request()) is None
    adapter = MusicGenSmall(WeightsChoice("random"), dtype="bfloat16")
    distance = adapter.precision_distance(request())
    assert set(distance.stages) == {"text encoder", "decoder logits, first step"}
    assert all(20 < snr < 80 for snr in distance.stages.values()), distance.stages  # bf16: ~8 bits of mantissa
    assert "item-0" in distance.on and "random weights" in distance.on


@pytest.mark.parametrize("melody", [False, True])
def test_the_fp32_side_taken_at_load_equals_the_rebuilt_one_and_needs_no_copy(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, melody: bool) -> None:
    """Planned before the load (what the timing pass does), the fp32 side is the model before its cast, run then:
    the same SNRs to the bit as the model built again, without the second copy (which MusicGen-Large's memory could
    not hold); another request falls back to the copy."""
    import baselines.base
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    cls = MusicGenMelody if melody else MusicGenSmall
    first = request(vocal_path=write_vocal(tmp_path / "v.wav")) if melody else request()
    rebuilt = cls(WeightsChoice("random"), dtype="bfloat16").precision_distance(first)
    planned = cls(WeightsChoice("random"), dtype="bfloat16")
    planned.plan_precision_distance(first)
    planned.load()
    assert planned.fp32_reference_s > 0
    builds = []
    monkeypatch.setattr(cls, "_fp32_model", lambda self: builds.append(1) or mg._MusicGen._fp32_model(self))
    monkeypatch.setattr(baselines.base, "free_bytes", lambda device: 0)  # no room for a copy: none is needed
    assert planned.precision_distance(first).stages == rebuilt.stages and builds == []
    other = dataclasses.replace(first, item_id="item-9", prompt="another prompt")
    with pytest.raises(AdapterError, match="needs a second, fp32 copy"):
        planned.precision_distance(other)


def test_precision_distance_says_when_the_fp32_copy_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    import baselines.musicgen as mg

    monkeypatch.setattr(mg, "published_config", lambda size: tiny_config(size == "melody"))
    import baselines.base

    adapter = MusicGenSmall(WeightsChoice("random"), dtype="bfloat16")
    counts = adapter.parameter_counts()
    assert counts is not None
    weights = 4 * counts.total
    # the weights alone would fit, their 25% headroom would not: refused, not risked (an OOM kill ends the run)
    monkeypatch.setattr(baselines.base, "free_bytes", lambda device: int(1.2 * weights))
    with pytest.raises(AdapterError, match=r"musicgen-small: comparing with fp32 needs a second, fp32 copy of the "
                                           r"model \(0\.0 GiB with 25% headroom\); 0\.0 GiB free on cpu"):
        adapter.precision_distance(request())
    monkeypatch.setattr(baselines.base, "free_bytes", lambda device: int(1.3 * weights))
    assert adapter.precision_distance(request()) is not None
