"""The score pass over a run folder: per-clip groups, anchors, resume, stale samples, bad clips, random samples,
and Table I (golden rendering from a fixed scores dict, snapshot)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.manifest import Manifest
from bench.run import RunConfig, run
from bench.score import ScoreConfig, find_samples, score
from reports.table1 import table1
from reports.tables import to_markdown

HERE = Path(__file__).parent
N_ITEMS = 6
DURATION_S = 8.0


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reference + 'misplaced' (every item gets another item's true accompaniment), scored once."""
    root = tmp_path_factory.mktemp("score")
    out = root / "out"
    run(RunConfig(out=out, models=("reference",), n=N_ITEMS, duration_s=DURATION_S, passes=("generate",),
                  progress=False), log=lambda s: None)
    manifest = Manifest.read(out / "manifest.json")
    misplaced = root / "misplaced"
    misplaced.mkdir()
    for k, item in enumerate(manifest.items):
        donor = manifest.items[(k + 3) % N_ITEMS]
        audio, rate = sf.read(donor.reference, always_2d=True)
        sf.write(misplaced / f"{item.item_id}.wav", audio, rate)
    run(RunConfig(out=out, models=(f"outputs:misplaced={misplaced}",), n=N_ITEMS, duration_s=DURATION_S,
                  passes=("generate",), progress=False), log=lambda s: None)
    score(out, manifest, _score_cfg(), log=lambda s: None, progress=False)
    return out


def _score_cfg(**kw: object) -> ScoreConfig:
    base: dict[str, object] = {"groups": ("signal", "adherence"), "baseline": "reference", "resamples": 200}
    base.update(kw)
    return ScoreConfig(**base)  # type: ignore[arg-type]


def test_every_sample_is_scored_with_cis(scored_run: Path) -> None:
    data = json.loads((scored_run / "scores.json").read_text())
    assert set(data["models"]) == {"reference", "misplaced"}
    for entry in data["models"].values():
        assert entry["n_samples"] == N_ITEMS and entry["errors"] == []
        loud = entry["per_clip"]["signal.loudness_lufs"]
        assert loud["n"] == N_ITEMS and loud["ci_low"] <= loud["value"] <= loud["ci_high"]
        assert "bootstrap" in loud["method"]


def test_anchors_bracket_and_the_true_pairs_win(scored_run: Path) -> None:
    data = json.loads((scored_run / "scores.json").read_text())
    anchors = data["anchors"]
    for metric in ("chroma_agreement", "key_agreement"):
        true, shuffled = anchors["true_pairs"][metric]["value"], anchors["shuffled_pairs"][metric]["value"]
        assert true > shuffled, metric
        ref = data["models"]["reference"]["per_clip"][f"adherence.{metric}"]["value"]
        assert ref == pytest.approx(true)  # the upper anchor is the reference row's own pairs
        assert data["models"]["misplaced"]["per_clip"][f"adherence.{metric}"]["value"] < true
    paired = data["models"]["misplaced"]["paired"]["adherence.chroma_agreement"]
    assert paired["versus"] == "reference" and paired["value"] < 0 and 0 < paired["p_value"] <= 1


def test_rescoring_computes_nothing_and_a_changed_sample_is_rescored(scored_run: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.metrics.signal as signal

    calls: list[int] = []
    real = signal.signal_metrics
    monkeypatch.setattr(signal, "signal_metrics", lambda a, r: calls.append(1) or real(a, r))
    manifest = Manifest.read(scored_run / "manifest.json")
    score(scored_run, manifest, _score_cfg(), log=lambda s: None, progress=False)
    assert calls == []
    sample = find_samples(scored_run)["misplaced"][0]
    record_path = scored_run / "scores" / "misplaced" / f"{sample.item_id}__{sample.sample_id}.json"
    before = json.loads(record_path.read_text())["groups"]["signal"]["values"]["loudness_lufs"]
    audio, rate = sf.read(sample.audio, always_2d=True)
    try:
        sf.write(sample.audio, audio * 0.5, rate, format="FLAC", subtype="PCM_24")  # same name, new content
        score(scored_run, manifest, _score_cfg(), log=lambda s: None, progress=False)
        assert len(calls) == 1  # only the changed clip
        after = json.loads(record_path.read_text())["groups"]["signal"]["values"]["loudness_lufs"]
        assert after == pytest.approx(before - 6.02, abs=0.05)  # half the amplitude: -6.02 LU, not the old value
    finally:
        sf.write(sample.audio, audio, rate, format="FLAC", subtype="PCM_24")


def test_a_broken_sample_is_reported_and_the_rest_scored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(RunConfig(out=out, models=("reference",), n=3, duration_s=3.0, passes=("generate",), progress=False),
        log=lambda s: None)
    broken = find_samples(out)["reference"][1]
    broken.audio.write_bytes(b"not audio at all")
    data = score(out, Manifest.read(out / "manifest.json"), _score_cfg(groups=("signal",)), log=lambda s: None,
                 progress=False)
    entry = data["models"]["reference"]
    assert [e["item_id"] for e in entry["errors"]] == [broken.item_id]
    assert broken.audio.name in entry["errors"][0]["message"]
    assert entry["per_clip"]["signal.true_peak_dbtp"]["n"] == 2


def test_random_weight_samples_are_scored_only_when_asked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(RunConfig(out=out, models=("reference",), n=2, duration_s=2.0, passes=("generate",), progress=False),
        log=lambda s: None)
    for meta_path in (out / "samples" / "reference").glob("*.json"):  # relabel as if from random weights
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "weights": "random"}))
    manifest = Manifest.read(out / "manifest.json")
    data = score(out, manifest, _score_cfg(groups=("signal",)), log=lambda s: None, progress=False)
    assert data["models"] == {} and any("RANDOM" in n for n in data["notes"])
    data = score(out, manifest, _score_cfg(groups=("signal",), score_random=True), log=lambda s: None,
                 progress=False)
    assert data["models"]["reference"]["weights"] == "random" and "RANDOM" in data["models"]["reference"]["label"]
    assert "Not shown: reference ran with RANDOM weights" in to_markdown(table1(data))


def _fixed_scores() -> dict:
    def est(v: float, lo: float, hi: float, n: int = 100) -> dict:
        return {"value": v, "ci_low": lo, "ci_high": hi, "n": n, "method": "percentile bootstrap"}

    aes = {f"aesthetics.{a}": est(v, v - 0.1, v + 0.1) for a, v in zip(("PQ", "PC", "CE", "CU"),
                                                                      (7.9, 6.3, 7.3, 7.6), strict=True)}
    adh = {"adherence.chroma_agreement": est(0.41, 0.39, 0.43), "adherence.key_agreement": est(0.62, 0.58, 0.66),
           "adherence.onset_alignment": est(0.35, 0.30, 0.40)}
    fad = {"vggish": {"fad": {**est(2.5, 2.1, 2.9), "se": 0.2, "bootstrap_bias": 0.6}, "kad": est(0.012, 0.008, 0.016),
                      "apa": {"value": 0.71, "n_items": 100}}}
    return {
        "format": "samuel-bench-scores/1", "config": {"embedders": ["vggish"], "resamples": 1000},
        "notes": ["FAD/KAD/APA with clap-laion-music not computed: weights not found."],
        "anchors": {"true_pairs": {k.split(".")[1]: est(0.5, 0.48, 0.52) for k in adh},
                    "shuffled_pairs": {k.split(".")[1]: est(0.1, 0.08, 0.12) for k in adh}},
        "models": {
            "reference": {"weights": "files", "per_clip": {**aes, **adh},
                          "sets": {"vggish": {"note": "this row is the FAD reference set itself",
                                              "apa": {"value": 1.0, "n_items": 100}}}},
            "samuel": {"weights": "pretrained", "per_clip": {**{k: est(v["value"] - 2, v["value"] - 2.1,
                                                                     v["value"] - 1.9) for k, v in aes.items()},
                                                           **adh}, "sets": fad},
            "musicgen-small": {"weights": "random", "per_clip": aes, "sets": {}},
        },
    }


def test_table1_snapshot() -> None:
    text = to_markdown(table1(_fixed_scores()))
    snapshot = HERE / "snapshots" / "table1.md"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text)
    assert text == snapshot.read_text()


def test_table1_flags_paper_values_outside_our_ci_and_hides_random_rows() -> None:
    table = table1(_fixed_scores())
    names = [r[0].display for r in table.rows]
    assert names == ["reference", "samuel", "Anchor: true pairs (upper)", "Anchor: shuffled pairs (lower)"]
    samuel = table.rows[1]
    assert samuel[2].display == "5.90 [5.80, 6.00], n=100" and samuel[3].display == "5.73†"  # below our CI
    assert samuel[6].display == "5.30 [5.20, 5.40], n=100" and samuel[7].display == "2.93†"
    assert table.rows[0][3].display == "7.92"  # inside [7.80, 8.00]
    assert any("samuel PQ" in n and "outside our 95% CI" in n for n in table.notes)
    assert any("musicgen-small ran with RANDOM weights" in n for n in table.notes)
    assert table.rows[0][10].display == "— (the FAD reference set)"


def test_samuel_eval_report_renders_table1(scored_run: Path) -> None:
    from reports.cli import main

    assert main(["report", str(scored_run)]) == 0
    text = (scored_run / "tables" / "table1.md").read_text()
    assert "Anchor: true pairs (upper)" in text and "misplaced" in text
    assert np.isfinite(json.loads((scored_run / "scores.json").read_text())["models"]["misplaced"]["per_clip"][
        "adherence.chroma_agreement"]["value"])


# -- the scorers with weights: tiny-budget checkpoints in the real formats, through samuel-eval ------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random real-size VGGish in the torch port's layout and a random audiobox-aesthetics model in the
    package's checkpoint format (both architectures are fixed in size)."""
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    from bench.embedders.vggish import CHECKPOINT_FILE, VGGishNet

    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    (folder / "vggish").mkdir()
    torch.save(VGGishNet().state_dict(), folder / "vggish" / CHECKPOINT_FILE)
    cfg = {"proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0, "nth_layer": 13,
           "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True, "output_dim": 1}
    transform = {a: {"mean": 5.0, "std": 1.0} for a in ("PQ", "PC", "CE", "CU")}
    model = AesMultiOutput(**cfg, target_transform=transform)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "model_cfg": cfg,
                "target_transform": transform}, folder / "checkpoint.pt")
    return {"vggish": folder / "vggish", "aesthetics": folder / "checkpoint.pt"}


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_samuel_eval_scores_aesthetics_and_the_fad_family(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    from reports.cli import main

    out = tmp_path / "out"
    base = ["--n", "4", "--duration", "3", "--out", str(out), "--passes", "generate,score", "--no-progress",
            "--resamples", "100"]
    assert main(["--models", "reference", *base, "--metrics", "signal"]) == 0
    manifest = Manifest.read(out / "manifest.json")
    misplaced = tmp_path / "misplaced"
    misplaced.mkdir()
    rng = np.random.default_rng(0)
    for k, item in enumerate(manifest.items):  # another item's accompaniment, with noise: a set unlike the reference
        audio, rate = sf.read(manifest.items[(k + 1) % 4].reference, always_2d=True)
        sf.write(misplaced / f"{item.item_id}.wav", 0.5 * audio + 0.05 * rng.standard_normal(audio.shape), rate)
    assert main(["--models", f"reference,outputs:misplaced={misplaced}", *base, "--metrics", "aesthetics,fad",
                 "--aesthetics-weights", str(checkpoints["aesthetics"]),
                 "--embedder-weights", f"vggish={checkpoints['vggish']}"]) == 0
    data = json.loads((out / "scores.json").read_text())
    for model in ("reference", "misplaced"):
        pq = data["models"][model]["per_clip"]["aesthetics.PQ"]
        assert pq["n"] == 4 and 1.0 < pq["value"] < 10.0
    sets = data["models"]["misplaced"]["sets"]["vggish"]
    assert sets["n_equal"] == 4 and sets["fad"]["value"] > 0 and sets["fad"]["se"] > 0
    assert {"fad_inf", "kad", "per_song_fad", "apa"} <= set(sets)
    assert data["models"]["reference"]["sets"]["vggish"]["apa"]["value"] == pytest.approx(1.0)
    assert data["scorers"]["embedder:vggish"]["status"]["kind"] == "pretrained"
    assert "signal.loudness_lufs" not in data["models"]["reference"]["per_clip"]  # only the groups asked for
    kept = json.loads(next((out / "scores" / "reference").glob("*.json")).read_text())["groups"]
    assert {"signal", "aesthetics"} <= set(kept)  # but an earlier group stays in the record, for a later report
    table = (out / "tables" / "table1.md").read_text()
    assert "misplaced" in table and "— (the FAD reference set)" in table
    # a missing embedder checkpoint turns FAD off with the one message; everything else still runs
    assert main(["--models", "reference", *base, "--metrics", "signal,fad",
                 "--embedder-weights", f"vggish={tmp_path / 'nowhere'}"]) == 0
    data = json.loads((out / "scores.json").read_text())
    assert any("vggish not computed" in n and "weights not found" in n for n in data["notes"])
    assert data["models"]["reference"]["per_clip"]["signal.true_peak_dbtp"]["n"] == 4
