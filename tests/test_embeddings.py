"""FAD embedders (bench.embedders): registry, weights rules, VGGish front end and checkpoint format, CLAP and
EnCodec through transformers (tiny random checkpoints saved in the real format), the content-addressed cache and
reference statistics.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from baselines.base import AdapterError, WeightsChoice, WeightsNotFoundError, WeightsStatus
from baselines.weights import Resolved
from bench.embedders import (
    EMBEDDERS,
    Embedder,
    EmbeddingCache,
    StatsFileError,
    UnknownEmbedderError,
    get_embedder,
    pooled_stats,
    read_stats_npz,
    reference_stats,
    register_embedder,
    write_stats_npz,
)
from bench.embedders.cache import embed_file
from bench.embedders.features import (
    VGGISH_FRONT_END,
    hz_to_mel,
    log_mel_spectrogram,
    mel_matrix,
    prepare_waveform,
    quantize_pcm16,
    stft_magnitude,
    vggish_examples,
)
from bench.embedders.vggish import CHECKPOINT_FILE, PCA_FILE, VGGishNet, pca_quantize
from bench.metrics.frechet import gaussian_stats
from bench.resample import resample
from samuel.hub import weights_digest

ROOT = Path(__file__).resolve().parents[1]
# The torch port's published state dict (harritaylor/torchvggish vggish-10086976.pth): names and shapes.
TORCHVGGISH_LAYOUT = {
    "features.0.weight": (64, 1, 3, 3), "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3), "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3), "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3), "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3), "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3), "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288), "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096), "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096), "embeddings.4.bias": (128,),
}


def noise(channels: int, samples: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((channels, samples)) * scale).astype(np.float32)


def tone(freq_hz: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


class FrameStats(Embedder):
    """A fast stand-in backend: four statistics of each 0.1 s frame. ``checkpoint`` plays the weights' digest."""

    name = "frame-stats"
    sample_rate = 8_000
    dim = 4

    def __init__(self, weights=None, *, device: str = "cpu", checkpoint: str = "sha:a") -> None:
        super().__init__(weights, device=device, checkpoint=checkpoint)
        self.checkpoint = checkpoint
        self.calls = 0

    def resolve_weights(self) -> Resolved:
        return Resolved(Path("/fake"), WeightsStatus("pretrained", "/fake", "fake weights", self.checkpoint))

    def _load(self) -> None:
        pass

    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        self.calls += 1
        frames = waveform[: len(waveform) // 800 * 800].reshape(-1, 800).astype(np.float64)
        return np.stack([frames.mean(1), frames.std(1), np.abs(frames).max(1), (frames**2).mean(1) * 10], axis=1)

    def preprocessing(self) -> str:
        return "0.1 s frames: mean, std, peak, power"


def write_wav(path: Path, audio: np.ndarray, rate: int = 44_100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, rate, subtype="FLOAT")
    return path


# -- fixtures: checkpoints in the real formats -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vggish_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-size random VGGish state dict under the published file name, and PCA parameters stored as numpy
    arrays in a torch file (the torch port's format)."""
    folder = tmp_path_factory.mktemp("vggish")
    torch.manual_seed(1)  # not the random-mode seed, so loaded weights are told apart from random init
    torch.save(VGGishNet().state_dict(), folder / CHECKPOINT_FILE)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    torch.save({"pca_eigen_vectors": q * 3.0, "pca_means": rng.standard_normal((128, 1))}, folder / PCA_FILE)
    return folder


@pytest.fixture(scope="module")
def tiny_clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers import save_tiny_clap

    return save_tiny_clap(tmp_path_factory.mktemp("tiny-clap"))


@pytest.fixture(scope="module")
def tiny_encodec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import EncodecConfig, EncodecModel

    folder = tmp_path_factory.mktemp("tiny-encodec")
    torch.manual_seed(0)
    config = EncodecConfig(hidden_size=8, num_filters=4, num_lstm_layers=1, codebook_dim=8, codebook_size=16)
    EncodecModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vggish(vggish_dir: Path) -> Embedder:
    return get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)))


# -- registry ----------------------------------------------------------------------------------------------------


def test_registry_names_are_fadtks_model_names():
    assert list(EMBEDDERS) == ["vggish", "clap-laion-audio", "clap-laion-music", "encodec-emb"]
    assert all(":" in target and target.startswith("bench.embedders.") for target in EMBEDDERS.values())


def test_unknown_embedder_gets_suggestions():
    with pytest.raises(UnknownEmbedderError, match=r"'clap-laion-musc'.*Did you mean 'clap-laion-music'"):
        get_embedder("clap-laion-musc")


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_embedder("vggish", "somewhere:Else")
    with pytest.raises(TypeError, match="unexpected keyword"):
        get_embedder("vggish", postprocessing=True)  # misspelled option: no silent default


def test_construction_is_cheap_and_lazy():
    code = ("import sys; from bench.embedders import get_embedder; "
            "e = get_embedder('clap-laion-music', device='cpu'); e2 = get_embedder('encodec-emb'); "
            "assert 'transformers' not in sys.modules, 'constructing imported transformers'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- weights -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "pretrained"])
def test_missing_vggish_weights_raise_one_clear_message(tmp_path, mode):
    missing = tmp_path / "nowhere"
    embedder = get_embedder("vggish", WeightsChoice(mode, str(missing)))  # constructing touches no file
    with pytest.raises(WeightsNotFoundError) as err:
        embedder.load()
    message = str(err.value)
    assert str(missing) in message and CHECKPOINT_FILE in message and "torchvggish/releases" in message


def test_folder_without_the_checkpoint_is_a_miss(tmp_path):
    (tmp_path / "other.pth").write_bytes(b"x")
    with pytest.raises(WeightsNotFoundError, match=CHECKPOINT_FILE):
        get_embedder("vggish", WeightsChoice("auto", str(tmp_path))).load()


@pytest.mark.parametrize("name,repo", [("clap-laion-audio", "laion/clap-htsat-unfused"),
                                       ("clap-laion-music", "laion/larger_clap_music"),
                                       ("encodec-emb", "facebook/encodec_24khz")])
def test_auto_with_no_hf_weights_raises_instead_of_random(monkeypatch, tmp_path, name, repo):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=rf"{name}: weights not found.*{repo}.*huggingface-cli download"):
        get_embedder(name, WeightsChoice("auto")).load()


def test_random_only_when_asked_and_labelled():
    embedder = get_embedder("vggish", WeightsChoice("random"))
    assert embedder.status.is_random and "RANDOM" in embedder.status.message
    assert embedder.identity()["checkpoint"] == "random-init:seed=0"


def test_clap_folder_without_feature_extractor_is_refused(tmp_path, tiny_clap_dir):
    (tmp_path / "config.json").write_bytes((tiny_clap_dir / "config.json").read_bytes())
    with pytest.raises(AdapterError, match=r"preprocessor_config\.json"):
        get_embedder("clap-laion-audio", WeightsChoice("pretrained", str(tmp_path))).load()


# -- VGGish front end --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples,frames,examples", [(160_000, 998, 10), (24_000, 148, 1), (15_599, 95, 0),
                                                     (15_600, 96, 1), (399, 0, 0)])
def test_front_end_frame_and_example_counts(samples, frames, examples):
    x = np.zeros(samples, dtype=np.float32)
    assert log_mel_spectrogram(x).shape == (frames, 64)
    assert vggish_examples(x).shape == (examples, 96, 64)


def test_front_end_constants():
    fe = VGGISH_FRONT_END
    assert (fe.window_length, fe.hop_length, fe.fft_length) == (400, 160, 512)
    assert mel_matrix().shape == (257, 64) and np.all(mel_matrix()[0] == 0)  # DC bin carries no weight


@pytest.mark.parametrize("freq_hz", [250.0, 1000.0, 4000.0])
def test_mel_of_a_sine_peaks_in_its_band(freq_hz):
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), 66)
    expected = int(np.argmin(np.abs(edges[1:-1] - hz_to_mel(freq_hz))))  # the band centred nearest the tone
    log_mel = log_mel_spectrogram(tone(freq_hz, 1.0))
    assert abs(int(np.argmax(log_mel.mean(axis=0))) - expected) <= 1
    assert log_mel.mean(axis=0).max() - np.median(log_mel.mean(axis=0)) > 5  # a peak, not a flat spectrum


def test_silence_gives_the_log_offset():
    np.testing.assert_allclose(log_mel_spectrogram(np.zeros(16_000)), np.log(0.01))


def test_stft_magnitude_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = noise(1, 16_000)[0]
    # librosa centres the 400-sample window inside the 512-sample frame: 56 samples of padding line the frames up
    ref = np.abs(librosa.stft(np.pad(x, (56, 56)).astype(np.float64), n_fft=512, hop_length=160, win_length=400,
                              window="hann", center=False)).T
    ours = stft_magnitude(x)
    assert ours.shape == ref.shape == (98, 257)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_mel_matrix_near_librosa_htk():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True, norm=None).T
    ref[0] = 0.0
    ours = mel_matrix()
    # not identical by design: librosa's triangles are linear in Hz, VGGish's in mel; the peaks agree
    assert np.abs(ours - ref).max() < 0.01
    np.testing.assert_array_equal(ours.argmax(axis=0), ref.argmax(axis=0))


def test_log_mel_matches_a_direct_numpy_reference():
    x = noise(1, 8_000, seed=3)[0].astype(np.float64)
    n = np.arange(400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)
    freqs = np.arange(257) * 8000 / 256
    edges_hz = 700 * (np.exp(np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66) / 1127) - 1)
    bank = np.zeros((257, 64))
    for band in range(64):
        lo, mid, hi = (1127 * np.log(1 + edges_hz[band + k] / 700) for k in range(3))
        for b in range(1, 257):  # bin 0 (DC) stays 0
            m = 1127 * np.log(1 + freqs[b] / 700)
            bank[b, band] = (m - lo) / (mid - lo) if lo < m <= mid else (hi - m) / (hi - mid) if mid < m < hi else 0
    rows = []
    for start in range(0, len(x) - 400 + 1, 160):
        spectrum = np.abs(np.fft.fft(x[start:start + 400] * window, 512))[:257]
        rows.append(np.log(spectrum @ bank + 0.01))
    np.testing.assert_allclose(log_mel_spectrogram(x), np.array(rows), rtol=1e-10, atol=1e-10)


def test_prepare_waveform_mono_resample_and_pcm16():
    stereo = np.stack([tone(440.0, 1.0, 44_100), -tone(440.0, 1.0, 44_100)])  # cancels in the mono mix
    assert np.abs(prepare_waveform(stereo, 44_100, 16_000)).max() == 0.0
    out = prepare_waveform(noise(2, 44_100), 44_100, 16_000)
    assert out.shape == (16_000,) and out.dtype == np.float32
    np.testing.assert_array_equal(out * 32768, np.round(out * 32768))  # on the 16-bit grid
    assert prepare_waveform(np.full((1, 100), 3.0, np.float32), 16_000, 16_000).max() == 32767 / 32768
    with pytest.raises(ValueError, match="NaN"):
        prepare_waveform(np.full((1, 10), np.nan, np.float32), 16_000, 16_000)
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        prepare_waveform(np.zeros(100, np.float32), 16_000, 16_000)


@pytest.mark.parametrize("resampler", ["torchaudio-default", "torchaudio-kaiser-best"])
def test_prepare_waveform_resamples_with_the_named_method(resampler):
    audio = noise(2, 44_100, seed=5)
    mono = audio.mean(axis=0)
    out = prepare_waveform(audio, 44_100, 16_000, resampler)
    np.testing.assert_array_equal(out, quantize_pcm16(resample(mono, 44_100, 16_000, resampler)))
    assert out.shape == (16_000,) and out.dtype == np.float32
    default = prepare_waveform(audio, 44_100, 16_000)
    np.testing.assert_array_equal(default, prepare_waveform(audio, 44_100, 16_000, "soxr"))
    np.testing.assert_array_equal(default, quantize_pcm16(resample(mono, 44_100, 16_000, "soxr")))
    assert np.abs(out - default).max() > 1e-3  # white noise fills the band where the resamplers differ
    with pytest.raises(ValueError, match="unknown resampler 'sox'"):
        prepare_waveform(audio, 16_000, 16_000, "sox")  # checked even when no resampling happens


# -- VGGish network and checkpoint -------------------------------------------------------------------------------


def test_vggish_checkpoint_has_the_torch_port_layout(vggish_dir):
    state = torch.load(vggish_dir / CHECKPOINT_FILE, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == TORCHVGGISH_LAYOUT


def test_vggish_loads_the_checkpoint_through_the_real_path(vggish, vggish_dir):
    assert vggish.status.kind == "pretrained"
    assert vggish.identity()["checkpoint"] == weights_digest(vggish_dir / CHECKPOINT_FILE)
    audio = noise(2, 3 * 44_100)
    out = vggish.embed(audio, 44_100)
    assert out.shape == (3, 128) and out.dtype == np.float32
    net = VGGishNet().eval()
    net.load_state_dict(torch.load(vggish_dir / CHECKPOINT_FILE, weights_only=True))
    examples = torch.from_numpy(vggish_examples(prepare_waveform(audio, 44_100, 16_000))).unsqueeze(1)
    with torch.inference_mode():
        np.testing.assert_allclose(out, net(examples).numpy(), rtol=1e-5, atol=1e-5)
    random_out = get_embedder("vggish", WeightsChoice("random")).embed(audio, 44_100)
    assert np.abs(out - random_out).max() > 1e-3  # the checkpoint was used, not random init


def test_vggish_checkpoint_file_as_source_and_short_clips(vggish, vggish_dir):
    by_file = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir / CHECKPOINT_FILE)))
    assert by_file.identity() == vggish.identity()
    assert by_file.embed(noise(1, 4_000), 16_000).shape == (1, 128)  # padded to 1 s, as fadtk does


def test_vggish_final_relu_and_postprocess(vggish, vggish_dir):
    audio = noise(1, 32_000)
    raw = vggish.embed(audio, 16_000)
    relu = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)), final_relu=True)
    np.testing.assert_allclose(relu.embed(audio, 16_000), np.maximum(raw, 0), atol=1e-6)
    pca = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)), postprocess=True)
    quantized = pca.embed(audio, 16_000)
    params = torch.load(vggish_dir / PCA_FILE, weights_only=False)
    np.testing.assert_allclose(quantized, pca_quantize(raw, params["pca_eigen_vectors"], params["pca_means"]),
                               atol=1.0)  # 1 step: float32 round-off can cross a rounding boundary
    assert set(np.unique(quantized)) <= set(range(256))
    assert (vggish.stats_key, relu.stats_key, pca.stats_key) == ("vggish", "vggish[relu]", "vggish[pca]")
    assert len({vggish.identity()["preprocessing"], relu.identity()["preprocessing"],
                pca.identity()["preprocessing"]}) == 3
    assert ";pca=head-sha256:" in pca.identity()["checkpoint"]


def test_vggish_resampler_changes_the_input_and_the_identity(vggish, vggish_dir):
    audio = noise(2, 2 * 44_100, seed=6)
    ta = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)), resampler="torchaudio-default")
    out = ta.embed(audio, 44_100)
    net = VGGishNet().eval()
    net.load_state_dict(torch.load(vggish_dir / CHECKPOINT_FILE, weights_only=True))
    examples = vggish_examples(prepare_waveform(audio, 44_100, 16_000, "torchaudio-default"))
    with torch.inference_mode():
        np.testing.assert_allclose(out, net(torch.from_numpy(examples).unsqueeze(1)).numpy(), rtol=1e-5, atol=1e-5)
    soxr_examples = vggish_examples(prepare_waveform(audio, 44_100, 16_000))
    band_change = np.abs(examples - soxr_examples).mean(axis=(0, 1))  # (64,) mean |log-mel change| per band
    assert band_change[-1] > 0.15 and band_change[:40].max() < 0.01  # torchaudio's filter cuts the top band only
    soxr_out = vggish.embed(audio, 44_100)
    assert np.abs(out - soxr_out).max() > 1e-3 * np.abs(soxr_out).max()
    # the default's identity is what it was (cached embeddings stay valid); another resampler is another identity
    assert vggish.identity()["preprocessing"].startswith("mono mean; soxr 16000 Hz; pcm16; pad to 1 s; log-mel")
    assert "resampler" not in vggish.identity() and "resampler" not in vggish.describe()["options"]
    assert ta.identity()["preprocessing"].startswith("mono mean; torchaudio-default (torchaudio windowed sinc")
    assert "rolloff=0.99" in ta.identity()["resampler"] and ta.describe()["options"]["resampler"] == ta.resampler
    assert ta.stats_key == vggish.stats_key == "vggish"  # a statistics file is the fixed reference either way
    with pytest.raises(ValueError, match="unknown resampler"):
        get_embedder("vggish", resampler="torchaudio")


def test_postprocess_without_pca_file_is_a_clear_miss(tmp_path, vggish_dir):
    (tmp_path / CHECKPOINT_FILE).symlink_to(vggish_dir / CHECKPOINT_FILE)
    with pytest.raises(WeightsNotFoundError, match=PCA_FILE):
        get_embedder("vggish", WeightsChoice("pretrained", str(tmp_path)), postprocess=True).identity()


def test_pca_params_pickled_by_numpy_1_load(tmp_path, vggish_dir):
    """The published PCA file was written under NumPy 1, whose pickles name numpy.core (moved in NumPy 2)."""
    from bench.embedders.vggish import read_pca_params

    old = tmp_path / PCA_FILE
    with zipfile.ZipFile(vggish_dir / PCA_FILE) as src, zipfile.ZipFile(old, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray\n_reconstruct" in data
                data = data.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")
            dst.writestr(item, data)
    vectors, means = read_pca_params(old)
    assert vectors.shape == (128, 128) and means.shape == (128,)
    np.testing.assert_array_equal(vectors, read_pca_params(vggish_dir / PCA_FILE)[0])


def test_pca_quantize_golden():
    emb = np.array([[-3.0, -2.0, 0.0, 2.0, 5.0]])
    out = pca_quantize(emb, np.eye(5), np.zeros(5))
    np.testing.assert_array_equal(out, [[0, 0, 128, 255, 255]])  # clip to [-2, 2], then (x + 2) * 255 / 4
    np.testing.assert_array_equal(pca_quantize(emb, np.eye(5), np.full(5, 1.0)), [[0, 0, 64, 191, 255]])


def test_not_a_vggish_state_dict_is_refused(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(AdapterError, match=rf"{CHECKPOINT_FILE}: not a VGGish state dict"):
        get_embedder("vggish", WeightsChoice("pretrained", str(tmp_path))).load()


# -- CLAP and EnCodec --------------------------------------------------------------------------------------------


def test_clap_tiny_checkpoint_through_the_real_path(tiny_clap_dir):
    embedder = get_embedder("clap-laion-music", WeightsChoice("pretrained", str(tiny_clap_dir)))
    assert embedder.sample_rate == 48_000 and embedder.status.kind == "pretrained"
    assert ";features=sha256:" in embedder.identity()["checkpoint"]
    out = embedder.embed(noise(2, 2 * 44_100 + 100), 44_100)
    assert out.shape == (3, 16)  # windows start at 0, 1 and 2 s
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_clap_windows_are_fadtks_and_batching_changes_nothing(tiny_clap_dir):
    """Window k of a clip (every 1 s, 10 s long, zero-padded) is window 0 of the clip cut at k seconds; 10 windows
    span two batches of 8."""
    embedder = get_embedder("clap-laion-audio", WeightsChoice("pretrained", str(tiny_clap_dir)))
    audio = noise(1, 48_000 * 9 + 24_000, seed=4)  # at the model rate: no resampling edge effects
    full = embedder.embed(audio, 48_000)
    assert full.shape[0] == 10
    for k in (0, 3, 9):
        np.testing.assert_allclose(full[k], embedder.embed(audio[:, k * 48_000:], 48_000)[0], atol=1e-5)
    sparse = get_embedder("clap-laion-audio", WeightsChoice("pretrained", str(tiny_clap_dir)), hop_seconds=5.0)
    assert sparse.embed(audio, 48_000).shape[0] == 2 and sparse.stats_key == "clap-laion-audio[hop=5]"


def test_clap_found_in_the_hugging_face_cache(monkeypatch, tmp_path, tiny_clap_dir):
    """``auto`` with no source looks up the default repo in the standard hub cache (offline), as MusicGen does."""
    import shutil

    repo = tmp_path / "hub" / "models--laion--larger_clap_music"
    shutil.copytree(tiny_clap_dir, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    embedder = get_embedder("clap-laion-music")
    assert embedder.status.kind == "pretrained" and "Hugging Face cache" in embedder.status.message
    assert embedder.embed(noise(1, 48_000), 48_000).shape == (1, 16)


def test_encodec_tiny_checkpoint_gives_pre_quantisation_latents(tiny_encodec_dir):
    from transformers import EncodecModel

    embedder = get_embedder("encodec-emb", WeightsChoice("auto", str(tiny_encodec_dir)))
    audio = noise(2, 44_100)
    out = embedder.embed(audio, 44_100)
    model = EncodecModel.from_pretrained(tiny_encodec_dir).eval()
    with torch.inference_mode():
        direct = model.encoder(torch.from_numpy(prepare_waveform(audio, 44_100, 24_000)).view(1, 1, -1))[0].T
    assert out.shape == (75, 8)  # 24000 samples / hop 320
    np.testing.assert_allclose(out, direct.numpy(), rtol=1e-5, atol=1e-6)
    capped = get_embedder("encodec-emb", WeightsChoice("auto", str(tiny_encodec_dir)), max_seconds=0.5)
    prefix = capped.embed(audio, 44_100)
    assert prefix.shape == (38, 8)  # 12000 samples: 37.5 hops
    np.testing.assert_allclose(prefix[:37], out[:37], atol=1e-5)  # causal: the frames before the cut are unchanged


# -- cache -------------------------------------------------------------------------------------------------------


def test_cache_hit_returns_the_stored_embedding(tmp_path):
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    wav = write_wav(tmp_path / "a.wav", noise(2, 44_100))
    first = cache.get_or_compute(embedder, wav)
    second = cache.get_or_compute(embedder, wav)
    assert (cache.misses, cache.hits, embedder.calls) == (1, 1, 1)
    np.testing.assert_array_equal(first, second)
    entries = list((tmp_path / "cache").rglob("*"))
    npy = [p for p in entries if p.is_file()]
    assert len(npy) == 1 and npy[0].suffix == ".npy" and np.load(npy[0]).dtype == np.float32  # no temp files left


def test_a_rewritten_file_is_never_served_a_stale_embedding(tmp_path):
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    wav = write_wav(tmp_path / "a.wav", noise(2, 44_100, seed=1))
    old = cache.get_or_compute(embedder, wav)
    write_wav(wav, noise(2, 44_100, seed=2, scale=0.3))  # same name, new content
    new = cache.get_or_compute(embedder, wav)
    assert cache.misses == 2 and not np.allclose(old, new)
    np.testing.assert_array_equal(new, embed_file(FrameStats(), wav))


def test_same_content_under_another_name_is_a_hit(tmp_path):
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    a = write_wav(tmp_path / "a.wav", noise(2, 44_100))
    b = tmp_path / "moved" / "b.wav"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    cache.get_or_compute(embedder, a)
    cache.get_or_compute(embedder, b)
    assert (cache.misses, cache.hits) == (1, 1)


def test_another_checkpoint_or_option_gives_another_key(tmp_path, vggish, vggish_dir):
    wav = write_wav(tmp_path / "a.wav", noise(2, 44_100))
    cache = EmbeddingCache(tmp_path / "cache")
    assert cache.key(FrameStats(checkpoint="sha:a"), wav) != cache.key(FrameStats(checkpoint="sha:b"), wav)
    random_vggish = get_embedder("vggish", WeightsChoice("random"))
    with_pca = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)), postprocess=True)
    resampled = get_embedder("vggish", WeightsChoice("pretrained", str(vggish_dir)), resampler="torchaudio-default")
    keys = {cache.key(e, wav) for e in (vggish, random_vggish, with_pca, resampled)}
    assert len(keys) == 4


def test_a_window_has_its_own_entry_and_embeds_only_its_seconds(tmp_path):
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    audio = np.concatenate([noise(2, 44_100, seed=1, scale=0.01), noise(2, 44_100, seed=2, scale=0.5)], axis=1)
    wav = write_wav(tmp_path / "long.wav", audio)
    whole = cache.get_or_compute(embedder, wav)
    window = cache.get_or_compute(embedder, wav, start_s=1.0, duration_s=0.5)
    assert whole.shape[0] == 20 and window.shape[0] == 5  # 0.1 s frames of 2 s and of the window's 0.5 s
    np.testing.assert_allclose(window, embedder.embed(audio[:, 44_100:66_150], 44_100), rtol=1e-6)
    assert cache.key(embedder, wav) != cache.key(embedder, wav, start_s=1.0, duration_s=0.5)
    again = cache.get_or_compute(embedder, wav, start_s=1.0, duration_s=0.5)
    assert (cache.misses, cache.hits) == (2, 1) and cache.redone() == []
    np.testing.assert_array_equal(again, window)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "nan", "float64"])
def test_a_corrupt_entry_is_recomputed(tmp_path, damage):
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    wav = write_wav(tmp_path / "a.wav", noise(2, 44_100))
    good = cache.get_or_compute(embedder, wav)
    entry = cache.path_for(embedder, cache.key(embedder, wav))
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "garbage":
        entry.write_bytes(b"not a numpy file")
    elif damage == "nan":
        np.save(entry, np.full_like(good, np.nan))
    else:
        np.save(entry, good.astype(np.float64))
    again = cache.get_or_compute(embedder, wav)
    assert cache.misses == 2 and embedder.calls == 2
    assert [e.path for e in cache.redone()] == [entry]  # and it is reported as redone
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(np.load(entry), good)  # and the entry is repaired


# -- reference statistics ----------------------------------------------------------------------------------------


def test_pooled_stats_equal_the_concatenated_gaussian():
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal((n, 5)) * [1, 2, 3, 4, 5] + 7 for n in (1, 4, 30, 2)]
    mu, cov, n = pooled_stats(chunks)
    ref_mu, ref_cov = gaussian_stats(np.concatenate(chunks))
    assert n == 37
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        pooled_stats([np.zeros((1, 5))])
    with pytest.raises(ValueError, match="chunk 1: dimension 4"):
        pooled_stats([np.zeros((3, 5)), np.zeros((3, 4))])


def test_reference_stats_from_a_folder_pool_every_frame(tmp_path):
    folder = tmp_path / "ref"
    clips = [noise(2, 44_100 * s, seed=s) for s in (1, 2, 3)]
    for i, clip in enumerate(clips):
        write_wav(folder / ("sub" if i == 2 else "") / f"{i}.wav", clip)
    (folder / ".hidden.wav").write_bytes(b"half-written")  # hidden: skipped, not an error
    (folder / "notes.txt").write_text("not audio")
    embedder, cache = FrameStats(), EmbeddingCache(tmp_path / "cache")
    stats = reference_stats(folder, embedder, cache)
    frames = np.concatenate([embedder.embed(c, 44_100) for c in clips])
    mu, cov = gaussian_stats(frames)
    assert (stats.n_files, stats.n_frames, stats.key) == (3, 60, "frame-stats")
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-6)
    np.testing.assert_allclose(stats.cov, cov, rtol=1e-5, atol=1e-12)
    assert stats.mu.dtype == stats.cov.dtype == np.float64
    reference_stats(folder, embedder, cache)
    assert cache.hits == 3  # the second pass embeds nothing


def test_stats_npz_round_trip_in_fadtks_format(tmp_path, vggish):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 128))
    mu, cov = gaussian_stats(x)
    path = write_stats_npz(tmp_path / "ref.npz", {"vggish": (mu, cov), "encodec-emb": (mu, cov)})
    with np.load(path) as data:
        assert sorted(data.files) == ["encodec-emb.cov", "encodec-emb.mu", "vggish.cov", "vggish.mu"]
    stats = reference_stats(path, vggish)  # the embedder is never loaded for a statistics file
    np.testing.assert_array_equal(stats.mu, mu)
    np.testing.assert_array_equal(stats.cov, cov)
    assert stats.n_frames is None and stats.source == str(path)


def test_missing_model_key_names_file_keys_and_wanted_key(tmp_path):
    path = write_stats_npz(tmp_path / "fma_pop.npz", {"clap-laion-music": (np.zeros(4), np.eye(4))})
    with pytest.raises(StatsFileError) as err:
        read_stats_npz(path, "vggish")
    message = str(err.value)
    assert str(path) in message and "'vggish.mu'" in message and "clap-laion-music.cov" in message


@pytest.mark.parametrize("mu,cov,match", [
    (np.zeros((4, 1)), np.eye(4), r"mu must be 1-D"),
    (np.zeros(4), np.eye(5), r"cov must be \(D, D\) = \(4, 4\)"),
    (np.zeros(4), np.full((4, 4), np.nan), "NaN"),
])
def test_bad_shapes_in_a_stats_file_are_refused(tmp_path, mu, cov, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **{"vggish.mu": mu, "vggish.cov": cov})
    with pytest.raises(StatsFileError, match=match):
        read_stats_npz(path, "vggish")


def test_stats_of_another_dimension_are_refused(tmp_path, vggish):
    path = write_stats_npz(tmp_path / "ref.npz", {"vggish": (np.zeros(512), np.eye(512))})
    with pytest.raises(StatsFileError, match="D=512, the embedder gives D=128"):
        reference_stats(path, vggish)


def test_bad_reference_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        reference_stats(tmp_path / "empty", FrameStats())
    (tmp_path / "part").mkdir()
    write_wav(tmp_path / "part" / "a.wav", noise(2, 44_100))
    (tmp_path / "part" / "b.m4a").write_bytes(b"")  # statistics of a.wav alone would pass for the folder's
    with pytest.raises(ValueError, match=r"b\.m4a: is \.m4a .*libsndfile cannot decode"):
        reference_stats(tmp_path / "part", FrameStats())
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(StatsFileError, match=r"not a readable \.npz"):
        reference_stats(tmp_path / "x.npz", FrameStats())
    with pytest.raises(ValueError, match="neither a folder"):
        reference_stats(tmp_path / "missing.npz", FrameStats())


@pytest.mark.parametrize("given", ["/no/such/folder", "./weights/missing", "missing-dir/model.safetensors"])
def test_a_missing_local_path_is_named_as_a_path_not_looked_up_as_a_hub_id(monkeypatch, tmp_path, given):
    # defect: --weights-path musicgen-small=/no/such/folder said it looked in the Hugging Face cache "for
    # '/no/such/folder'", as if a path could be a hub id
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as err:
        get_embedder("clap-laion-music", WeightsChoice("auto", given)).load()
    message = str(err.value)
    assert f"the local path {given!r}" in message and "it does not exist" in message
    assert "Hugging Face cache" not in message.split("Looked for")[1].split(".")[0]


def test_hub_ids_and_paths_told_apart(tmp_path, monkeypatch):
    from samuel.hub import looks_like_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    for hub_id in ("facebook/musicgen-small", "laion/larger_clap_music", "stabilityai/stable-audio-open-1.0", "vggish"):
        assert not looks_like_path(hub_id), hub_id
    for path in ("/abs/x", "./x", "~/x", "a/b/c", "x.safetensors", "org/model.ckpt", "outputs/vae", "a--b/c"):
        assert looks_like_path(path), path
