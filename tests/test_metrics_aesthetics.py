"""The Audiobox Aesthetics scorer: windowing golden numbers, bad inputs, checkpoint lookup and loading in both
formats, parity with the package's own model modules driven as ``infer.py`` drives them, and batch invariance.

The package's WavLM size is fixed in its code (``DEFAULT_AUDIO_CFG``), so the random checkpoint is real size
(94M parameters, ~1.3 s per 10 s window on 2 CPU cores); the clips are chosen to need three windows in all.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.base import WeightsChoice, WeightsNotFoundError
from bench.metrics.aesthetics import AXES, HUB_REPO, PTH_CONFIG_KEYS, AestheticsScorer, aesthetics_windows
from bench.resample import resample, sinc_output_length

SR = 16_000
# Unequal per axis so that a mixed-up axis or a skipped inverse transform shows.
TARGET_TRANSFORM = {"CE": {"mean": 5.6, "std": 1.4}, "CU": {"mean": 6.1, "std": 1.2},
                    "PC": {"mean": 4.2, "std": 1.9}, "PQ": {"mean": 6.8, "std": 0.9}}
# The package's own deprecation noise, from building its WavLM and running its attention.
pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")]
MODEL_CFG = {"proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0, "nth_layer": 13,
             "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True, "output_dim": 1}


# -- windowing (pure) ----------------------------------------------------------------------------------------
def test_25_s_clip_gives_three_windows_weighted_10_10_5():
    audio = np.random.default_rng(0).uniform(-1, 1, 25 * SR).astype(np.float32)
    windows, masks, seconds = aesthetics_windows(audio, SR)
    assert windows.shape == masks.shape == (3, 10 * SR) and windows.dtype == np.float32 and masks.dtype == bool
    np.testing.assert_array_equal(seconds, [10.0, 10.0, 5.0])
    np.testing.assert_array_equal(windows[2, : 5 * SR], audio[20 * SR :])
    assert not windows[2, 5 * SR :].any() and masks[2, : 5 * SR].all() and not masks[2, 5 * SR :].any()
    np.testing.assert_array_equal(windows.reshape(-1)[: 25 * SR], audio)  # no overlap, nothing dropped


@pytest.mark.parametrize(("samples", "expected"),
                         [(20 * SR, [10.0, 10.0]), (1, [1 / SR]), (10 * SR + 1, [10.0, 1 / SR])])
def test_window_edges(samples, expected):
    windows, masks, seconds = aesthetics_windows(np.ones(samples, np.float32), SR)
    np.testing.assert_array_equal(seconds, expected)
    assert masks.sum() == samples == windows.sum()


def test_stereo_is_the_channel_mean():
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-1, 1, (2, 3 * SR)).astype(np.float32)
    windows, _, _ = aesthetics_windows(stereo, SR)
    np.testing.assert_allclose(windows[0, : 3 * SR], stereo.mean(axis=0), atol=1e-7)


def test_44k_is_resampled_to_16k_with_exact_length():
    t = np.arange(25 * 44_100) / 44_100
    windows, _, seconds = aesthetics_windows(np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None], 44_100)
    np.testing.assert_array_equal(seconds, [10.0, 10.0, 5.0])  # 25 s stay 25 s: 400000 samples at 16 kHz
    mono = windows.reshape(-1)[: 25 * SR]
    expected = np.sin(2 * np.pi * 1000 * np.arange(25 * SR) / SR)
    np.testing.assert_allclose(mono[SR:-SR], expected[SR:-SR], atol=1e-3)  # edges: the filter's own ramp


def test_torchaudio_default_resampler_gives_its_samples_and_length():
    rng = np.random.default_rng(2)
    stereo = rng.uniform(-1, 1, (2, 10 * 44_100 + 1)).astype(np.float32)
    windows, masks, seconds = aesthetics_windows(stereo, 44_100, "torchaudio-default")
    length = sinc_output_length(stereo.shape[1], 44_100, SR)  # ceil(160000.36): one sample more than soxr's round
    assert length == 160_001 and masks.sum() == length and windows.shape == (2, 10 * SR)
    np.testing.assert_array_equal(seconds, [10.0, 1 / SR])
    np.testing.assert_array_equal(windows.reshape(-1)[:length],
                                  resample(stereo.mean(axis=0, dtype=np.float64).astype(np.float32), 44_100, SR,
                                           "torchaudio-default"))
    soxr_windows, soxr_masks, _ = aesthetics_windows(stereo, 44_100)
    assert soxr_masks.sum() == 160_000 and np.abs(soxr_windows[0] - windows[0]).max() > 1e-2
    np.testing.assert_array_equal(aesthetics_windows(stereo[:, :SR], SR, "torchaudio-default")[0],
                                  aesthetics_windows(stereo[:, :SR], SR)[0])  # at 16 kHz nothing is resampled
    with pytest.raises(ValueError, match="unknown resampler 'torchaudio'"):
        aesthetics_windows(stereo, 44_100, "torchaudio")
    with pytest.raises(ValueError, match="unknown resampler"):
        AestheticsScorer(resampler="sox")


@pytest.mark.parametrize(("audio", "rate", "problem"), [
    (np.zeros((1, 2, 100), np.float32), SR, "3 dimensions"),
    (np.zeros(0, np.float32), SR, "empty"),
    (np.zeros((2, 0), np.float32), SR, "empty"),
    (np.zeros((1000, 2), np.float32), SR, "not (samples, channels)"),
    (np.zeros(100, np.int16), SR, "float samples"),
    (np.zeros(100, np.float32), 0, "rate must be a positive integer"),
    (np.zeros(100, np.float32), 44_100.0, "rate must be a positive integer"),
    (np.concatenate([np.zeros(SR // 2), [np.nan], np.zeros(10)]).astype(np.float32), SR,
     "NaN samples, the first at 0.500 s"),
    (np.array([[0.0, 1.0, np.inf, 0.0]] * 2, np.float32), SR, "infinite"),
])
def test_bad_inputs_name_the_problem(audio, rate, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        aesthetics_windows(audio, rate)


# -- checkpoint lookup ----------------------------------------------------------------------------------------
def test_missing_checkpoint_gives_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for scorer in (AestheticsScorer(), AestheticsScorer(WeightsChoice("pretrained"))):  # auto never falls to random
        with pytest.raises(WeightsNotFoundError) as err:
            scorer.status  # noqa: B018 (resolving is what raises)
        message = str(err.value)
        for part in (HUB_REPO, str(tmp_path / "hub"), "[HF_HUB_OFFLINE]", "huggingface-cli download",
                     "checkpoint.pt", "network is never used"):
            assert part in message
    with pytest.raises(WeightsNotFoundError, match=re.escape(str(tmp_path / "nowhere.pt"))):
        AestheticsScorer(WeightsChoice("pretrained", str(tmp_path / "nowhere.pt"))).load()


def test_random_weights_only_when_asked_and_labelled():
    scorer = AestheticsScorer(WeightsChoice("random"), random_seed=3)
    assert scorer.status.is_random and "RANDOM" in scorer.status.message and "seed 3" in scorer.status.message
    identity = scorer.identity()
    assert identity["weights"]["kind"] == "random" and identity["checkpoint_file"] is None
    assert identity["preprocessing"]["sample_rate"] == SR and identity["preprocessing"]["window_s"] == 10
    assert identity["preprocessing"]["resampler"] == "soxr VHQ"  # the default's identity is what it always was
    other = AestheticsScorer(WeightsChoice("random"), random_seed=3, resampler="torchaudio-default").identity()
    assert other["preprocessing"]["resampler"].startswith("torchaudio-default (torchaudio windowed sinc")
    assert {k: v for k, v in other["preprocessing"].items() if k != "resampler"} == \
        {k: v for k, v in identity["preprocessing"].items() if k != "resampler"}
    assert scorer._model is None  # nothing was built


def test_bad_checkpoint_file_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not an audiobox-aesthetics checkpoint, it lacks "
                                         "state_dict, model_cfg, target_transform"):
        AestheticsScorer(WeightsChoice("pretrained", str(path))).load()


# -- a real-size random checkpoint in both formats ------------------------------------------------------------
@pytest.fixture(scope="module")
def random_aes():
    from audiobox_aesthetics.model.aes import AesMultiOutput

    torch.manual_seed(0)
    model = AesMultiOutput(**MODEL_CFG, target_transform=TARGET_TRANSFORM).eval()
    with torch.no_grad():  # heads and layer mix that spread scores over O(1), so a wrong window or mask shows
        for axis in AXES:
            torch.nn.init.normal_(model.proj_layer[axis][0].weight, std=3.0)
            model.layer_weights[axis].normal_()
    return model


@pytest.fixture(scope="module")
def pth_checkpoint(random_aes, tmp_path_factory) -> Path:
    """The package's checkpoint format: what ``infer.AesPredictor.setup_model`` reads."""
    path = tmp_path_factory.mktemp("aes-pth") / "checkpoint.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in random_aes.state_dict().items()},
                "model_cfg": MODEL_CFG, "target_transform": TARGET_TRANSFORM}, path)
    return path


@pytest.fixture(scope="module")
def scorer(pth_checkpoint) -> AestheticsScorer:
    scorer = AestheticsScorer(WeightsChoice("pretrained", str(pth_checkpoint)), batch_size=3)
    scorer.load()
    return scorer


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, int]]:
    """A: stereo 12.5 s (a full and a padded window); B: mono 4 s (one padded window). Already at 16 kHz, so that
    the reference, which would resample with torchaudio, gets the very same samples."""
    rng = np.random.default_rng(7)
    t = np.arange(int(12.5 * SR)) / SR
    a = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * rng.standard_normal(t.size)]).astype(np.float32)
    b = (0.5 * np.sign(np.sin(2 * np.pi * 3 * np.arange(4 * SR) / SR)) * rng.uniform(0, 1, 4 * SR)).astype(np.float32)
    return [(a, SR), (b, SR)]


@pytest.fixture(scope="module")
def batch_scores(scorer, clips) -> list[dict[str, float]]:
    return scorer.score(clips)


def reference_scores(checkpoint: Path, clips: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``infer.AesPredictor`` (setup_model, audio_resample_mono, make_inference_batch, forward) written out for
    16 kHz input, with the package's model modules. Returns (clips, axes) weighted and unweighted window means."""
    from audiobox_aesthetics.model.aes import AesMultiOutput, Normalize

    ckpt = torch.load(checkpoint, map_location="cpu")
    state_dict = {re.sub("^model.", "", k): v for k, v in ckpt["state_dict"].items()}
    model = AesMultiOutput(**({k: ckpt["model_cfg"][k] for k in PTH_CONFIG_KEYS}
                              | {"target_transform": ckpt["target_transform"]}))
    model.load_state_dict(state_dict)
    model.eval()
    transform = {axis: Normalize(mean=model.target_transform[axis]["mean"], std=model.target_transform[axis]["std"])
                 for axis in AXES}
    winlen = 10 * SR
    wavs, masks, weights, bids = [], [], [], []
    for bid, (audio, _) in enumerate(clips):
        wav = torch.from_numpy(np.atleast_2d(audio)).mean(dim=0, keepdim=True)  # (1, S): resample is a no-op
        for ii in range(0, wav.shape[-1], winlen):
            wav_ii = wav[..., ii : ii + winlen]
            wav_ii_len = wav_ii.shape[-1]
            if wav_ii_len < winlen:
                wav_ii = F.pad(wav_ii, (0, winlen - wav_ii_len))
            mask_ii = torch.zeros_like(wav_ii, dtype=torch.bool)
            mask_ii[:, 0:wav_ii_len] = True
            wavs.append(wav_ii)
            masks.append(mask_ii)
            weights.append(wav_ii_len / winlen)
            bids.append(bid)
    with torch.inference_mode():
        preds_all = model({"wav": torch.stack(wavs), "mask": torch.stack(masks)})
    weights_t, bids_t = torch.tensor(weights), torch.tensor(bids)
    weighted = np.zeros((len(clips), len(AXES)))
    plain = np.zeros_like(weighted)
    for j, axis in enumerate(AXES):
        preds = transform[axis].inverse(preds_all[axis])
        for b in range(len(clips)):
            w = weights_t[bids_t == b]
            weighted[b, j] = ((preds[bids_t == b] * w).sum() / w.sum()).item()
            plain[b, j] = preds[bids_t == b].mean().item()
    return weighted, plain


def test_parity_with_the_package_model(pth_checkpoint, clips, batch_scores):
    expected, unweighted = reference_scores(pth_checkpoint, clips)
    ours = np.array([[s[a] for a in AXES] for s in batch_scores])
    assert ours.shape == (2, 4) and np.all(np.isfinite(ours))
    max_error = float(np.abs(ours - expected).max())
    print(f"parity max |ours - reference| = {max_error:.2e}")
    assert max_error < 1e-4
    # The check can fail: the clips score apart, and an unweighted window mean would miss by far more than 1e-4.
    assert np.abs(ours[0] - ours[1]).min() > 1e-2
    assert np.abs(unweighted[0] - expected[0]).max() > 1e-3


def test_torchaudio_default_reproduces_infer_py_at_44k(scorer):
    """At 44.1 kHz, ``resampler="torchaudio-default"`` scores what ``infer.py`` scores: it resamples each channel
    with torchaudio's default (our re-implementation stands in for torchaudio), then takes the channel mean. The
    16 kHz scorer equals the package's model (test_parity_with_the_package_model), so it scores that input."""
    rng = np.random.default_rng(11)
    t = np.arange(3 * 44_100) / 44_100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * rng.standard_normal(t.size),
                       0.3 * rng.standard_normal(t.size)]).astype(np.float32)
    torchaudio_scorer = AestheticsScorer(scorer.weights, resampler="torchaudio-default")
    # the same checkpoint's model, shared rather than loaded a second time (94M parameters)
    torchaudio_scorer._model, torchaudio_scorer._target_transform = scorer._model, scorer._target_transform
    ours = torchaudio_scorer.score([(stereo, 44_100)])[0]
    at_16k = resample(stereo, 44_100, SR, "torchaudio-default").mean(axis=0)  # resample, then mix, as infer.py
    expected = scorer.score([(at_16k, SR)])[0]
    # Can fail: with soxr this model scores the clip 0.01-0.19 apart per axis (measured when this was written).
    np.testing.assert_allclose([ours[a] for a in AXES], [expected[a] for a in AXES], atol=1e-4, rtol=0)


def test_a_clip_scores_the_same_alone_and_in_a_batch(scorer, clips, batch_scores):
    np.random.seed(123)  # noqa: NPY002 (checks that scoring leaves the legacy global RNG as it was)
    before = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    alone = [scorer.score([clip])[0] for clip in clips]  # B alone: batch of 1, not 3; A alone: batch of 2
    assert np.random.random() == before  # noqa: NPY002
    for single, batched in zip(alone, batch_scores, strict=True):
        assert list(single) == list(AXES)
        np.testing.assert_allclose([single[a] for a in AXES], [batched[a] for a in AXES], atol=1e-5, rtol=0)


def test_score_rejects_a_bad_clip_by_index(scorer, clips):
    nan_clip = np.full((2, SR), np.nan, np.float32)
    with pytest.raises(ValueError, match=r"^clip 1: audio holds NaN samples"):
        scorer.score([clips[1], (nan_clip, SR)])
    assert scorer.score([]) == []


def test_hf_folder_and_cache_load_the_same_model(random_aes, scorer, tmp_path, monkeypatch):
    folder = tmp_path / "aes-hf"
    random_aes.save_pretrained(folder)  # config.json + model.safetensors, as on the hub
    from_folder = AestheticsScorer(WeightsChoice("pretrained", str(folder)))
    assert from_folder.identity()["checkpoint_file"] == str(folder / "model.safetensors")
    from_folder.load()
    assert from_folder._target_transform == scorer._target_transform == {a: TARGET_TRANSFORM[a] for a in AXES}
    ours, theirs = from_folder._model.state_dict(), scorer._model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert not from_folder._model.enable_autocast  # the reference runs fp32 whatever "precision" says

    # The standard hub cache layout, found with local_files_only (offline).
    cache = tmp_path / "hub"
    snapshot = cache / "models--facebook--audiobox-aesthetics" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).symlink_to(folder / name)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = AestheticsScorer().status
    assert status.kind == "pretrained" and Path(status.source) == snapshot and "Hugging Face cache" in status.message
    assert status.sha256 == from_folder.status.sha256
