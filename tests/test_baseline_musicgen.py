"""MusicGen adapters: parity with transformers' own generate, chroma parity without torchaudio, parameter counts,
weights resolution, timing hooks and bad input. Tiny random models saved in the transformers format; no network."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from baselines.base import AdapterError, GenerationRequest, ItemError, WeightsChoice, WeightsNotFoundError
from baselines.chroma import ChromaSettings, PowerSpectrogram, melody_chroma, power_spectrogram, to_model_rate
from baselines.musicgen import (
    MusicGenLarge,
    MusicGenMedium,
    MusicGenMelody,
    MusicGenSmall,
    component_counts,
    published_config,
)

SEED = 1234
SAMPLING = {"do_sample": True, "guidance_scale": 3.0, "top_k": 250, "temperature": 1.0}
WORDS = ["<pad>", "</s>", "<unk>", "calm", "piano", "with", "soft", "drums", "a", "song", "upbeat", "guitar"]
# 0.26 s at the tiny codec's 50 Hz -> 13 frames, + 3 codebook delays = 16 autoregressive steps
DURATION_S = 0.26


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))


# ---- tiny random checkpoints in the transformers format ---------------------------------------------------------
def tiny_config(melody: bool = False):
    """The real code path at toy width: T5 (2 layers, 16 wide), EnCodec at 32 kHz with the real hop of 640 and 4
    codebooks of 64 codes, a 2-layer decoder over 64 codes + pad 64."""
    from transformers import EncodecConfig, T5Config

    t5 = T5Config(vocab_size=len(WORDS), d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4,
                  relative_attention_num_buckets=8, relative_attention_max_distance=16)
    codec = EncodecConfig(sampling_rate=32_000, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2],
                          num_filters=4, hidden_size=16, codebook_size=64, num_lstm_layers=1, use_causal_conv=False,
                          use_conv_shortcut=False)
    decoder = {"vocab_size": 64, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2, "ffn_dim": 48,
               "num_codebooks": 4, "pad_token_id": 64, "bos_token_id": 64, "max_position_embeddings": 64}
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        return MusicgenMelodyConfig(text_encoder=t5.to_dict(), audio_encoder=codec.to_dict(),
                                    decoder=MusicgenMelodyDecoderConfig(**decoder).to_dict(), chroma_length=20)
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    return MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=codec.to_dict(),
                          decoder=MusicgenDecoderConfig(**decoder).to_dict())


def tiny_tokenizer():
    """A word-level tokenizer with T5's conventions (pad 0, </s> 1 appended, unk 2), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def save_tiny(folder: Path, melody: bool = False, with_tokenizer: bool = True):
    from baselines.musicgen import model_class

    torch.manual_seed(0)
    model = model_class(melody)(tiny_config(melody)).eval()
    for layer in model.audio_encoder.quantizer.layers:  # transformers inits codebooks to 0: every code same sound
        layer.codebook.embed.normal_()
    model.generation_config.decoder_start_token_id = 64
    model.generation_config.pad_token_id = 64
    model.save_pretrained(folder)
    tokenizer = tiny_tokenizer()
    if with_tokenizer:
        tokenizer.save_pretrained(folder)
    return model, tokenizer


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


# ---- parity with transformers ------------------------------------------------------------------------------------
def test_text_parity_with_transformers_generate(tmp_path: Path) -> None:
    model, tokenizer = save_tiny(tmp_path / "tiny")
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    assert adapter.status.kind == "pretrained"
    (out,) = adapter.generate([request()])

    steps = adapter.total_units(request())
    assert steps == 13 + 3
    inputs = tokenizer(["calm piano with soft drums"], return_tensors="pt", padding=True)
    torch.manual_seed(SEED)
    ref = model.generate(**inputs, **SAMPLING, max_new_tokens=steps)[0].numpy()
    assert out.sample_rate == 32_000 and out.audio.dtype == np.float32
    assert out.audio.shape == ref.shape == (1, 13 * 640)
    np.testing.assert_array_equal(out.audio, ref)
    assert out.info["units_done"] == steps and out.info["text_tokens"] == 6 and out.info["sampling"]["top_k"] == 250
    # reproducible per seed, different across seeds
    np.testing.assert_array_equal(adapter.generate([request()])[0].audio, out.audio)
    assert not np.array_equal(adapter.generate([request(seed=SEED + 1)])[0].audio, out.audio)


def test_melody_parity_with_transformers_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = save_tiny(tmp_path / "tiny", melody=True)
    patched_feature_extractor(monkeypatch).save_pretrained(tmp_path / "tiny")  # preprocessor_config.json
    vocal = write_vocal(tmp_path / "vocal.wav")
    adapter = MusicGenMelody(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    (out,) = adapter.generate([request(vocal_path=vocal)])

    from samuel.audio import load_audio

    wav = to_model_rate(load_audio(vocal).samples, 44_100, 32_000)
    features = patched_feature_extractor(monkeypatch)(wav, sampling_rate=32_000, return_tensors="pt")
    inputs = tokenizer(["calm piano with soft drums"], return_tensors="pt", padding=True)
    torch.manual_seed(SEED)
    ref = model.generate(**inputs, input_features=features["input_features"], **SAMPLING,
                         max_new_tokens=adapter.total_units(request()))[0].numpy()
    np.testing.assert_array_equal(out.audio, ref)
    assert out.info["chroma_frames"] == 1 + 48_000 // 4096  # 1.5 s at 32 kHz, hop 4096, centred
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
def test_tiny_counts_equal_unique_parameter_sum() -> None:
    from baselines.musicgen import model_class

    for melody in (False, True):
        model = model_class(melody)(tiny_config(melody))
        unique = {id(p): p.numel() for p in model.parameters()}
        counts = component_counts(model)
        assert counts.total == sum(unique.values())
        assert counts.by_component["text_encoder"] == sum(
            {id(p): p.numel() for p in model.text_encoder.parameters()}.values())


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
def test_missing_weights(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(WeightsNotFoundError) as err:
        _ = MusicGenSmall(WeightsChoice("pretrained", source=str(missing))).status
    message = str(err.value)
    assert "musicgen-small" in message and str(missing) in message and "huggingface-cli download" in message
    with pytest.raises(WeightsNotFoundError, match="facebook/musicgen-melody"):
        _ = MusicGenMelody(WeightsChoice("pretrained")).status  # the default hub id, not in the empty cache
    status = MusicGenMedium(WeightsChoice("auto", source=str(missing))).status
    assert status.kind == "random" and "RANDOM" in status.message


def test_folder_without_tokenizer_says_so(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny", with_tokenizer=False)
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    with pytest.raises(AdapterError, match=r"no usable text tokenizer \(none of tokenizer\.json"):
        adapter.load()


# ---- timing hooks and bad input ----------------------------------------------------------------------------------
def test_max_units_and_on_unit(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    adapter = MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    ticks: list[int] = []
    (full,) = adapter.generate([request()], on_unit=lambda: ticks.append(1))
    assert len(ticks) == adapter.total_units(request()) == 16 and full.info["units_done"] == 16
    for cap, frames in ((9, 6), (2, 0)):  # 9 steps -> 9 - 3 frames; 2 steps: below the delay pattern, no audio
        ticks.clear()
        (out,) = adapter.generate([request()], max_units=cap, on_unit=lambda: ticks.append(1))
        assert len(ticks) == cap and out.info["units_done"] == cap and out.info["truncated"]
        assert out.audio.shape == (1, frames * 640)


def test_bad_vocal_is_item_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_tiny(tmp_path / "tiny", melody=True)
    adapter = MusicGenMelody(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(ItemError, match=re.escape(str(bad))):
        adapter.generate([request(vocal_path=bad)])
    with pytest.raises(ItemError, match="no vocal"):
        adapter.generate([request()])
    assert "torchaudio" not in sys.modules


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
