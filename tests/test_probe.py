"""The responsiveness probe: the distance and statistic (golden numbers, invariants), the verdict's false-alarm rate
under a known null (seeded simulation), and the probe end to end through evaluate() with fake generators that
ignore, follow, or merely hash their vocal, with pretrained and random weights, resume and a bad item."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from probe_fakes import FAKES, SilenceRefuser, VocalFollower, VocalIgnorer
from scipy import stats as sps

from baselines import registry
from bench.evaluate import EvalConfig, EvalResult, evaluate
from bench.metrics.responsiveness import (
    AGAINST,
    FOLLOWS,
    NO_RESPONSE,
    NOT_PROBED,
    PLUMBING,
    log_spectral_distance,
    power_spectrogram,
    responsiveness,
    t_mean_ci,
    verdict,
)
from bench.probe import PLUMBING_WINDOW_S, ModelProbe, ProbeFile, ProbeItem, probe_pairs, read_probe, unchanged
from bench.results import RunResults
from bench.stats import Estimate

for _name, _cls in FAKES.items():
    if _name not in registry.names():
        registry.register(_name, f"probe_fakes:{_cls.__name__}")


# -- the distance ------------------------------------------------------------------------------------------------


def _noise(seconds: float = 1.0, seed: int = 0, rate: int = 16_000) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * rate))


def test_log_spectral_distance_golden_and_invariants() -> None:
    x, y = _noise(seed=0), _noise(seed=1)
    assert log_spectral_distance(x, x) == 0.0
    assert log_spectral_distance(x, y) == pytest.approx(log_spectral_distance(y, x))
    # a gain g moves every bin above the floor by 20 log10(g) dB: 6.02 dB for g = 2
    assert log_spectral_distance(x, 2 * x) == pytest.approx(20 * math.log10(2), rel=1e-3)
    # stereo is mixed to mono; lengths are cropped to the common span
    assert log_spectral_distance(np.stack([x, x]), np.concatenate([x, y])) == 0.0
    assert log_spectral_distance(np.zeros(4000), np.zeros(4000)) == 0.0
    # two independent white noises: |X|^2 / sigma^2 is chi2(2)/2 per bin, so the dB difference of two such bins is
    # 10 log10 of an F(2, 2) variable, whose RMS is 10/ln(10) * pi/sqrt(3) = 7.88 dB (the log of F(2,2) is logistic)
    assert log_spectral_distance(_noise(8.0, 2), _noise(8.0, 3)) == pytest.approx(
        10 / math.log(10) * math.pi / math.sqrt(3), rel=0.03)


def test_power_spectrogram_frames_and_parseval() -> None:
    x = _noise(seconds=0.5)
    spec = power_spectrogram(x, 512)
    assert spec.shape[1] == 257 and spec.shape[0] == math.ceil(x.size / 128) + 1
    with pytest.raises(ValueError, match="n_fft"):
        power_spectrogram(x, 2)


@pytest.mark.parametrize("bad, match", [(np.zeros(0), "empty"), (np.array([0.0, np.nan] * 600), "NaN"),
                                        (np.zeros((2000, 2)), "transpose"), (np.zeros((2, 2, 2)), "shape")])
def test_log_spectral_distance_rejects_bad_input(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        log_spectral_distance(bad, np.ones(1200))


# -- the statistic and the verdict -----------------------------------------------------------------------------------


def test_t_interval_golden() -> None:
    est = t_mean_ci([1.0, 2.0, 3.0, 4.0])
    half = sps.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (est.value, est.n) == (2.5, 4)
    assert est.low == pytest.approx(2.5 - half) and est.high == pytest.approx(2.5 + half)
    assert half == pytest.approx(2.0543, abs=1e-4)  # t(0.975, 3) = 3.18245, s = 1.29099
    assert math.isnan(t_mean_ci([1.0]).low) and t_mean_ci([]).n == 0
    assert t_mean_ci([1.0, np.nan, 3.0]).n == 2  # NaN dropped


def test_responsiveness_is_the_paired_difference() -> None:
    est = responsiveness(np.array([0.5, 0.6, 0.4]), np.array([0.1, 0.2, np.nan]))
    assert est.n == 2 and est.value == pytest.approx(0.4)
    with pytest.raises(ValueError, match="one length"):
        responsiveness(np.zeros(3), np.zeros(2))


def _est(value: float, low: float, high: float, n: int = 10) -> Estimate:
    return Estimate(value, low, high, n, "test")


def test_verdict_branches() -> None:
    differ = [False, True, False]
    assert verdict("pretrained", differ, _est(0.2, 0.1, 0.3)).label == FOLLOWS
    assert verdict("pretrained", differ, _est(0.0, -0.1, 0.1)).label == NO_RESPONSE
    assert verdict("pretrained", differ, _est(-0.2, -0.3, -0.1)).label == AGAINST
    assert verdict("pretrained", [True] * 3, _est(0.2, 0.1, 0.3)).label == NO_RESPONSE  # identical wins
    assert verdict("random", differ, None).label == PLUMBING
    assert verdict("random", [True], None).label == NO_RESPONSE  # a random model whose vocal never arrives
    assert verdict("files", differ, None).label == NOT_PROBED
    assert verdict("pretrained", [], None).label == NOT_PROBED
    assert verdict("pretrained", differ, _est(0.2, math.nan, math.nan, 1)).label == NOT_PROBED
    assert verdict("pretrained", differ, _est(0.2, 0.1, 0.3)).passing
    assert not verdict("pretrained", differ, _est(-0.2, -0.3, -0.1)).passing


# Under the probe's null (the output does not depend on the vocal) y_i and y'_i are exchangeable, so d_i is
# symmetric about 0: the nulls below are symmetric, from light to heavy tails and two-point.
NULLS = {
    "normal": lambda rng, n: rng.standard_normal(n),
    "heavy-tailed t(3)": lambda rng, n: rng.standard_t(3, n),
    "Laplace": lambda rng, n: rng.laplace(0.0, 1.0, n),
    "two-point +-1 with jitter": lambda rng, n: rng.choice([-1.0, 1.0], n) + 0.05 * rng.standard_normal(n),
}


@pytest.mark.parametrize("null", list(NULLS))
def test_follows_false_alarm_rate_under_the_null(null: str) -> None:
    """Known truth E[d] = 0 at the probe's default n = 10: "follows its vocal" at most 5% of the time (the one-sided
    t rate is 2.5% for normal d); likewise "responds against"."""
    rng = np.random.default_rng(14)
    sims, n = 2000, 10
    labels = [verdict("pretrained", [False] * n, responsiveness(NULLS[null](rng, n), np.zeros(n))).label
              for _ in range(sims)]
    follows, against = labels.count(FOLLOWS) / sims, labels.count(AGAINST) / sims
    assert follows <= 0.05 and against <= 0.05, (follows, against)
    if null == "normal":  # exact: 2.5% each side; 3 binomial SDs (0.35%) either way
        assert abs(follows - 0.025) < 0.0105 and abs(against - 0.025) < 0.0105


def test_follows_has_power_when_the_model_follows() -> None:
    """E[d] = 1 SD at n = 10: the one-sided t test's power is 0.80 (noncentral t, ncp = sqrt(10))."""
    rng = np.random.default_rng(15)
    labels = [verdict("pretrained", [False] * 10, responsiveness(1.0 + rng.standard_normal(10), np.zeros(10))).label
              for _ in range(2000)]
    power = labels.count(FOLLOWS) / 2000
    expected = 1 - sps.nct.cdf(sps.t.ppf(0.975, 9), 9, math.sqrt(10))
    assert expected == pytest.approx(0.80, abs=0.01) and abs(power - expected) < 0.03


def test_probe_pairs_are_a_cyclic_derangement() -> None:
    from bench.manifest import Item

    items = tuple(Item(f"i{k}", f"/v/{k}.wav", "p", k, 4.0) for k in range(5))
    pairs = probe_pairs(items, 3)
    assert [(a.item_id, b.item_id) for a, b in pairs] == [("i0", "i1"), ("i1", "i2"), ("i2", "i0")]
    assert len(probe_pairs(items, 10)) == 5 and probe_pairs(items, 10)[-1][1].item_id == "i0"
    assert probe_pairs(items, 1) == []


def test_a_swap_within_run_to_run_noise_counts_as_unchanged() -> None:
    assert unchanged(ProbeItem("a", "b", identical=True))
    assert unchanged(ProbeItem("a", "b", identical=False, swap_distance=0.5, repeat_distance=0.7))
    assert not unchanged(ProbeItem("a", "b", identical=False, swap_distance=3.0, repeat_distance=0.7))
    assert not unchanged(ProbeItem("a", "b", identical=False, swap_distance=3.0))  # no repeat: any change counts


# -- end to end through evaluate() -----------------------------------------------------------------------------------

MODELS = ("fake-follower", "fake-ignorer", "fake-hasher", "fake-random-follower", "fake-random-ignorer",
          "fake-silence-refuser")


def _cfg(out: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {"out": out, "models": MODELS, "n": 4, "duration_s": 2.0, "time_items": 2,
                               "passes": ("params", "generate", "probe"), "no_progress": True}
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EvalResult, ProbeFile]:
    out = tmp_path_factory.mktemp("probe") / "out"
    result = evaluate(_cfg(out), log=lambda s: None)
    probe = read_probe(out)
    assert probe is not None
    return out, result, probe


@pytest.mark.slow
def test_verdicts_on_the_fakes(probed: tuple[Path, EvalResult, ProbeFile]) -> None:
    _, _, probe = probed
    m = probe.models
    assert m["fake-follower"].verdict == FOLLOWS and m["fake-follower"].responsiveness.ci_low > 0
    assert m["fake-follower"].responsiveness.n == 4
    ignorer = m["fake-ignorer"]
    assert ignorer.verdict == NO_RESPONSE and "identical" in ignorer.reason
    assert all(r.identical and r.swap_distance == 0.0 and r.d == 0.0 for r in ignorer.items)
    assert all(r.seed_distance > 1.0 for r in ignorer.items)  # the seed does change its output
    hasher = m["fake-hasher"]  # its output changes with the vocal, but not towards it
    assert hasher.verdict == NO_RESPONSE and hasher.responsiveness.ci_low < 0 < hasher.responsiveness.ci_high
    assert all(not r.identical for r in hasher.items)
    assert m["fake-random-follower"].verdict == PLUMBING and m["fake-random-follower"].mode == "plumbing"
    assert m["fake-random-ignorer"].verdict == NO_RESPONSE
    assert len(m["fake-random-follower"].items) == 1 and m["fake-random-follower"].responsiveness is None
    assert m["fake-random-follower"].items[0].repeat_distance == 0.0  # deterministic on a CPU
    assert m["fake-random-follower"].window_s == PLUMBING_WINDOW_S


@pytest.mark.slow
def test_probe_samples_are_stored_apart_and_labelled(probed: tuple[Path, EvalResult, ProbeFile]) -> None:
    out, _, _ = probed
    follower = sorted(p.name for p in (out / "probe" / "samples" / "fake-follower").glob("*.flac"))
    # own samples are the generate pass's; the probe adds swapped, silence and seed_b per item
    assert len(follower) == 12 and {n.split("__")[0].split(".")[1] for n in follower} == {"swapped", "silence",
                                                                                          "seed_b"}
    assert len(list((out / "samples" / "fake-follower").glob("*.flac"))) == 4  # Table I's samples untouched
    random = sorted(p.name for p in (out / "probe" / "samples" / "fake-random-follower").glob("*.flac"))
    assert random and all(n.endswith(".random.flac") for n in random)
    assert not (out / "samples" / "fake-random-follower").exists()  # random weights: no Table I samples


@pytest.mark.slow
def test_a_failing_probe_item_is_reported_and_the_rest_still_judged(probed: tuple[Path, EvalResult, ProbeFile]
                                                                     ) -> None:
    _, result, probe = probed
    refuser = probe.models["fake-silence-refuser"]
    assert refuser.verdict == FOLLOWS  # the silence kind failed; own and swapped still tell
    assert all("silence" in r.errors and r.silence_distance is None for r in refuser.items)
    failed = [f for f in result.failures if f.stage == "probe"]
    assert {f.what for f in failed} == {f"fake-silence-refuser/syn-00{i}" for i in range(4)}
    assert all("the vocal is silent" in f.message for f in failed) and result.exit_code == 1


@pytest.mark.slow
def test_probe_json_reads_back_and_rejects_damage(probed: tuple[Path, EvalResult, ProbeFile], tmp_path: Path) -> None:
    out, _, _ = probed
    data = json.loads((out / "probe.json").read_text())
    assert ProbeFile.from_json(data).to_json() == data
    data["models"]["fake-follower"]["verdict"] = "sounds great"
    bad = tmp_path / "probe.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"probe\.json: field 'models\.fake-follower\.verdict'"):
        read_probe(tmp_path)
    bad.write_text("{torn")
    with pytest.raises(ValueError, match=r"probe\.json: unreadable"):
        read_probe(tmp_path)


@pytest.mark.slow
def test_table2_and_the_report_show_the_verdicts(probed: tuple[Path, EvalResult, ProbeFile]) -> None:
    from reports.probe import probe_section
    from reports.table2 import table2

    out, _, probe = probed
    results = RunResults.read(out / "results.json")
    table = table2(results, probe)
    col = table.columns.index("Responds to vocal")
    rows = {row[0].display: row[col].display for row in table.rows}
    assert rows["fake-follower"].startswith("follows its vocal (d = ")
    assert rows["fake-ignorer"].startswith(NO_RESPONSE) and rows["fake-random-follower"] == PLUMBING
    assert any("Responds to vocal" in n for n in table.notes) and any("Probe warnings" in n for n in table.notes)
    assert table2(results).rows[0][col].display == "not probed"
    html = probe_section(out)
    assert 'id="probe"' in html and "follows its vocal" in html and "plumbing only" in html
    assert "fake-silence-refuser" in html and "the vocal is silent" in html
    from reports.html import write_report

    page = write_report(out, out / "report.html").read_text()
    assert page.count('<section id="probe">') == 1 and "probe-summary" in page


@pytest.mark.slow
def test_rerun_reuses_the_probe(probed: tuple[Path, EvalResult, ProbeFile], monkeypatch: pytest.MonkeyPatch) -> None:
    out, _, probe = probed
    before = (out / "probe.json").read_text()
    for cls in (VocalFollower, VocalIgnorer, SilenceRefuser):
        monkeypatch.setattr(cls, "calls", 0)
    evaluate(_cfg(out, models=("fake-follower", "fake-ignorer")), log=lambda s: None)
    assert VocalFollower.calls == 0 and VocalIgnorer.calls == 0  # every sample was on disk
    after = ProbeFile.read(out / "probe.json")
    assert after.models["fake-follower"].to_json() == probe.models["fake-follower"].to_json()
    assert json.loads(before)["models"].keys() == after.to_json()["models"].keys()  # other models' entries kept


def test_probe_off_and_too_few_items(tmp_path: Path) -> None:
    evaluate(_cfg(tmp_path / "off", models=("fake-ignorer",), probe=0), log=lambda s: None)
    assert read_probe(tmp_path / "off") is None
    evaluate(_cfg(tmp_path / "one", models=("fake-ignorer",), n=1), log=lambda s: None)
    only: ModelProbe = read_probe(tmp_path / "one").models["fake-ignorer"]  # type: ignore[union-attr]
    assert only.verdict == NOT_PROBED and only.items == ()


def test_probe_flag_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.cli import main

    assert EvalConfig().probe == 10
    out = tmp_path / "out"
    assert main(["--models", "fake-ignorer", "--out", str(out), "--no-progress", "--probe", "-1"]) == 2
    assert "--probe: must be a whole number >= 0" in capsys.readouterr().err and not out.exists()


def test_clean_keeps_every_current_probe_and_mix_file_and_removes_the_rest(tmp_path: Path) -> None:
    """A fresh run has nothing stale, probe samples and mix-view records included; after a rerun probing fewer
    items, the dropped item's probe samples (and only they) are stale, and ``clean`` removes exactly them."""
    from bench.evaluate import stale_files
    from bench.runfolder import RunFolder
    from reports.cli import main

    out = tmp_path / "run"
    cfg = {"models": ("fake-follower", "fake-ignorer"), "n": 3, "probe": 3, "metrics": ("signal",),
           "score_on": "both", "passes": ("params", "generate", "probe", "score")}
    evaluate(_cfg(out, **cfg), log=lambda s: None)
    run = RunFolder(out)
    probe_samples = sorted((out / "probe" / "samples").rglob("*.flac"))
    mix_records = sorted((out / "scores").glob("*/mix/*.json"))
    # swapped, silence and seed_b per item and model (own is the run's sample)
    assert len(probe_samples) == 2 * 3 * 3 and mix_records
    assert stale_files(run) == []
    evaluate(_cfg(out, **{**cfg, "probe": 2}), log=lambda s: None)
    stale = stale_files(run)
    assert stale and all(p.is_relative_to(out / "probe") for p in stale)
    # the item no longer probed, and the swap of the item whose donor changed (item i takes item i+1 mod m's vocal)
    assert {(p.parent.name, p.name.split("__")[0]) for p in stale} == {
        (m, k) for m in cfg["models"] for k in ("syn-002.swapped", "syn-002.silence", "syn-002.seed_b",
                                                "syn-001.swapped")}, stale
    assert main(["clean", str(out)]) == 0
    assert stale_files(run) == [] and not any(p.exists() for p in stale)
    assert read_probe(out).models["fake-follower"].verdict  # type: ignore[union-attr]
    # a model no longer run: its samples, clip records of both views, timing and probe samples are stale
    evaluate(_cfg(out, **{**cfg, "probe": 2, "models": ("fake-follower",)}), log=lambda s: None)
    gone = {(*p.relative_to(out).parts[:2], p.parent.name) for p in stale_files(run)}
    assert ("scores", "fake-ignorer", "mix") in gone and ("probe", "samples", "fake-ignorer") in gone
    assert all("fake-ignorer" in p.parts for p in stale_files(run))


def test_a_model_timed_in_depth_mode_is_not_probed_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    import probe_fakes

    # --timing depth on a model with no depth timing: it is timed (or not) whole, so it is still probed
    evaluate(_cfg(tmp_path / "asked", models=("fake-random-follower",), timing="depth"), log=lambda s: None)
    assert "fake-random-follower" in read_probe(tmp_path / "asked").models  # type: ignore[union-attr]
    # one that offers it, with random weights on a CPU (ACE-Step): only its cut copy runs, and that is not probed
    monkeypatch.setattr(probe_fakes.RandomFollower, "timing_depths", lambda self: (2, 8), raising=False)
    monkeypatch.setattr(probe_fakes.RandomFollower, "default_timing_mode", "extrapolate", raising=False)
    lines: list[str] = []
    evaluate(_cfg(tmp_path / "cut", models=("fake-random-follower",)), log=lines.append)
    assert read_probe(tmp_path / "cut") is None
    assert any("probe: not run: the whole model is only timed, in depth mode (random weights on a CPU" in line
               for line in lines), lines


def test_the_probe_runs_on_the_model_the_time_pass_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With random weights nothing is generated for scoring: the time pass loads the model (from scratch, as its
    protocol wants) and the probe then runs on it, so the model is loaded once, not twice (MusicGen-Melody's load
    took 24 s of the main job)."""
    import probe_fakes

    monkeypatch.setattr(probe_fakes.RandomFollower, "loads", 0)
    lines: list[str] = []
    evaluate(_cfg(tmp_path / "out", models=("fake-random-follower",), passes=("params", "probe", "time")),
             log=lines.append)
    assert probe_fakes.RandomFollower.loads == 1
    probed = read_probe(tmp_path / "out")
    assert probed is not None and probed.models["fake-random-follower"].verdict == PLUMBING
    timed = next(i for i, line in enumerate(lines) if line.startswith("  time: median"))
    assert any(line.startswith("  probe (plumbing") for line in lines[timed:]), lines


# -- the plumbing span: real songs rest, and songs repeat ------------------------------------------------------------


def _sung(path: Path, seconds: float, rest_s: float, midi: float, rate: int = 48_000) -> Path:
    """A vocal that rests for ``rest_s`` seconds, then sings a harmonic tone at ``midi``."""
    import soundfile as sf

    t = np.arange(round(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    voice = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)) * (t >= rest_s)
    sf.write(path, np.stack([voice, voice], 1).astype(np.float32), rate)
    return path


def test_plumbing_start_is_the_most_active_span_of_the_window(tmp_path: Path) -> None:
    from bench.manifest import folder_manifest
    from bench.probe import plumbing_start

    vocals = tmp_path / "v"
    vocals.mkdir()
    _sung(vocals / "a.wav", 6.0, 1.5, 60)
    _sung(vocals / "b.wav", 6.0, 0.0, 64)
    a, b = folder_manifest(vocals, 2, duration_s=4.0).items
    assert plumbing_start(a, 1.0) == pytest.approx(1.5)  # the first sung second, not the rest before it
    assert plumbing_start(b, 1.0) == 0.0  # sings from the start: the item's own start
    assert plumbing_start(a, 4.0) == a.start_s  # the whole window: nothing to choose


@pytest.mark.parametrize("rest_s", [0.0, 1.5])
def test_a_random_model_that_hears_its_vocal_is_plumbed_even_when_the_vocal_rests_first(tmp_path: Path,
                                                                                        rest_s: float) -> None:
    # defect: the plumbing probe took each window's first second; two songs resting there gave two silent vocals,
    # identical outputs, and "does not respond to its vocal" for a model that does
    vocals = tmp_path / "v"
    vocals.mkdir()
    for i, midi in enumerate((57, 62, 66)):
        _sung(vocals / f"s{i}.wav", 5.0, rest_s, midi)
    out = tmp_path / "out"
    evaluate(_cfg(out, models=("fake-random-follower",), vocals=vocals, duration_s=4.0, n=3), log=lambda s: None)
    probe = read_probe(out).models["fake-random-follower"]  # type: ignore[union-attr]
    assert probe.verdict == PLUMBING, probe.reason
    (row,) = probe.items
    assert row.own_start_s == pytest.approx(rest_s) and row.donor_start_s == pytest.approx(rest_s)
    assert not row.identical
    from reports.probe import items_table
    from reports.tables import to_markdown

    assert f"own {rest_s:.2f}-{rest_s + 1:.2f}, swapped {rest_s:.2f}-{rest_s + 1:.2f}" in to_markdown(
        items_table(probe, "Fake"))


def test_an_item_whose_vocal_equals_its_donors_is_skipped_and_named(tmp_path: Path) -> None:
    # a file copied under two names: the swap cannot change any output, so it says nothing of the plumbing
    import shutil

    vocals = tmp_path / "v"
    vocals.mkdir()
    _sung(vocals / "a.wav", 5.0, 0.0, 57)
    shutil.copy(vocals / "a.wav", vocals / "b.wav")
    out = tmp_path / "out"
    logged: list[str] = []
    evaluate(_cfg(out, models=("fake-random-follower", "fake-follower"), vocals=vocals, duration_s=4.0, n=2),
             log=logged.append)
    for name in ("fake-random-follower", "fake-follower"):
        probe = read_probe(out).models[name]  # type: ignore[union-attr]
        assert probe.verdict == NOT_PROBED and probe.items == ()
        assert "every item's vocal equals its donor's" in probe.reason and "a (b's vocal)" in probe.reason
    assert any("a not probed: its vocal 1 s spans and b's are identical" in line for line in logged)
    _sung(vocals / "c.wav", 5.0, 0.0, 64)  # a third song: the plumbing probe takes the next item, b with c's vocal
    out2 = tmp_path / "out2"
    evaluate(_cfg(out2, models=("fake-random-follower",), vocals=vocals, duration_s=4.0, n=3), log=lambda s: None)
    probe = read_probe(out2).models["fake-random-follower"]  # type: ignore[union-attr]
    assert probe.verdict == PLUMBING and [(r.item_id, r.vocal_from) for r in probe.items] == [("b", "c")]
