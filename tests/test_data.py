"""Latent datasets: formats, memory mapping, errors, the split by song, and normalisation statistics."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from samuel.data import (
    ACCOMP_FILE,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    STD_FLOOR,
    VOCAL_FILE,
    DataError,
    LatentPairs,
    NormStats,
    compute_norm_stats,
    open_latent_dataset,
    split_train_val,
    write_latent_pair,
)

C, T = 64, 16  # real channel count; few frames keep the files small (frames are not fixed by the format)


def _pair(n: int, seed: int = 0, frames: int = T) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vocal = rng.normal(0.5, 2.0, size=(n, C, frames)).astype(np.float32)
    accomp = rng.normal(-1.0, 0.5, size=(n, C, frames)).astype(np.float32)
    return vocal, accomp


def _write_prepared(root: Path, songs: list[int | None], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A `samuel prepare`-style directory; ``None`` in ``songs`` is a skipped song (no shard)."""
    entries, pairs = [], []
    for k, n in enumerate(songs):
        if n is None:
            entries.append({"name": f"s{k}", "status": "skipped", "reason": "short", "n_chunks": 0, "shard": None})
            continue
        pair = _pair(n, seed + k)
        shard = f"shards/{k:04d}-s{k}"
        write_latent_pair(root / shard, *pair)
        entries.append({"name": f"s{k}", "status": "ok", "n_chunks": n, "shard": shard})
        pairs.append(pair)
    (root / MANIFEST_FILE).write_text(json.dumps({"format": MANIFEST_FORMAT, "songs": entries}))
    return pairs


# ------------------------------------------------------------------------------------------------ POPDB format


def test_popdb_round_trip(tmp_path):
    vocal, accomp = _pair(5)
    write_latent_pair(tmp_path, vocal, accomp)
    ds = open_latent_dataset(tmp_path)
    assert isinstance(ds, LatentPairs)
    assert (len(ds), ds.channels, ds.frames) == (5, C, T)
    assert ds.groups.dtype == np.int64 and ds.groups.tolist() == [0, 1, 2, 3, 4]  # no song info: own groups
    v, a = ds[3]
    assert v.dtype == torch.float32 and v.shape == (C, T)
    np.testing.assert_array_equal(v.numpy(), vocal[3])
    np.testing.assert_array_equal(a.numpy(), accomp[3])
    assert ds[-1][0].numpy().tolist() == vocal[4].tolist()
    info = ds.describe()
    assert info["format"] == "popdb" and info["items"] == 5 and info["shards"] == 1
    assert info["shapes"]["vocal"] == [5, C, T] and info["dtype"] == {"vocal": "float32", "accomp": "float32"}
    with pytest.raises(IndexError):
        ds[5]


def test_getitem_and_read_batch_agree_in_the_given_order(tmp_path):
    write_latent_pair(tmp_path, *_pair(6))
    ds = open_latent_dataset(tmp_path)
    order = [4, 0, 4, 2]  # unsorted, with a repeat
    v, a = ds.read_batch(order)
    assert v.shape == (4, C, T) and v.dtype == torch.float32
    for k, i in enumerate(order):
        torch.testing.assert_close(v[k], ds[i][0], rtol=0, atol=0)
        torch.testing.assert_close(a[k], ds[i][1], rtol=0, atol=0)
    assert ds.read_batch([])[0].shape == (0, C, T)


def test_items_are_copies(tmp_path):
    write_latent_pair(tmp_path, *_pair(2))
    ds = open_latent_dataset(tmp_path)
    v, _ = ds[0]
    v.fill_(123.0)  # the memmap is read-only; a view would raise or, worse, write through
    assert ds[0][0].abs().max() < 100


def test_float16_files_are_converted_per_item(tmp_path):
    vocal, accomp = _pair(3)
    np.save(tmp_path / VOCAL_FILE, vocal.astype(np.float16))
    np.save(tmp_path / ACCOMP_FILE, accomp.astype(np.float16))
    ds = open_latent_dataset(tmp_path)
    assert ds.describe()["dtype"] == {"vocal": "float16", "accomp": "float16"}
    v, _ = ds.read_batch([1, 2])
    assert v.dtype == torch.float32
    np.testing.assert_array_equal(v.numpy(), vocal[1:3].astype(np.float16).astype(np.float32))


def test_opening_is_memory_mapped_and_does_not_read_the_file(tmp_path):
    n = 64  # 64 items x 64 x 1024 x 4 bytes = 16 MiB per file
    rng = np.random.default_rng(0)
    for name in (VOCAL_FILE, ACCOMP_FILE):
        arr = np.lib.format.open_memmap(tmp_path / name, mode="w+", dtype=np.float32, shape=(n, C, 1024))
        arr[:] = rng.standard_normal((n, C, 1024), dtype=np.float32)
        arr.flush()
        del arr
    tracemalloc.start()  # NumPy reports its data buffers to tracemalloc; a memmap's pages are not allocations
    try:
        ds = open_latent_dataset(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"opening allocated {peak} bytes; the 16 MiB files must be mapped, not read"
    vocal, accomp = ds.memmaps()
    assert isinstance(vocal, np.memmap) and isinstance(accomp, np.memmap)
    v, a = ds.read_batch([63, 1])
    np.testing.assert_array_equal(v.numpy(), np.load(tmp_path / VOCAL_FILE)[[63, 1]])
    np.testing.assert_array_equal(a.numpy(), np.load(tmp_path / ACCOMP_FILE)[[63, 1]])


def test_dataset_pickles_without_its_maps(tmp_path):
    import pickle

    write_latent_pair(tmp_path, *_pair(40))
    ds = open_latent_dataset(tmp_path)
    blob = pickle.dumps(ds)  # as DataLoader workers started by spawn do
    assert len(blob) < 10_000
    torch.testing.assert_close(pickle.loads(blob)[7][1], ds[7][1], rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------ errors


def test_mismatched_pair_names_both_files_and_shapes(tmp_path):
    vocal, accomp = _pair(10)
    np.save(tmp_path / VOCAL_FILE, vocal)
    np.save(tmp_path / ACCOMP_FILE, accomp[:9])
    with pytest.raises(DataError) as err:
        open_latent_dataset(tmp_path)
    msg = str(err.value)
    assert f"{VOCAL_FILE} is (10, 64, 16)" in msg and f"{ACCOMP_FILE} is (9, 64, 16)" in msg
    assert "matched by index" in msg and str(tmp_path) in msg


@pytest.mark.parametrize("missing", [VOCAL_FILE, ACCOMP_FILE])
def test_missing_file(tmp_path, missing):
    write_latent_pair(tmp_path, *_pair(2))
    (tmp_path / missing).unlink()
    with pytest.raises(DataError, match=f"{missing}: no such file"):
        open_latent_dataset(tmp_path)


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match="neither manifest"):
        open_latent_dataset(tmp_path)
    with pytest.raises(DataError, match="no such dataset directory"):
        open_latent_dataset(tmp_path / "nope")


def test_text_file_named_npy(tmp_path):
    write_latent_pair(tmp_path, *_pair(2))
    (tmp_path / VOCAL_FILE).write_text("vocal latents, honest\n")
    with pytest.raises(DataError, match=f"{VOCAL_FILE}: not a readable .npy file"):
        open_latent_dataset(tmp_path)


@pytest.mark.parametrize(
    ("shape", "dtype", "match"),
    [
        ((2, C), np.float32, "expected a 3-D array"),
        ((2, 1, C, T), np.float32, "expected a 3-D array"),
        ((2, 32, T), np.float32, "32 channels"),
        ((2, T, C), np.float32, r"looks time-major \(items, frames, channels\): save it as \(items, 64, frames\)"),
        ((2, C, T), np.int16, "must be floating point"),
        ((0, C, T), np.float32, "zero items"),
    ],
)
def test_bad_arrays(tmp_path, shape, dtype, match):
    for name in (VOCAL_FILE, ACCOMP_FILE):
        np.save(tmp_path / name, np.zeros(shape, dtype=dtype))
    with pytest.raises(DataError, match=match) as err:
        open_latent_dataset(tmp_path)
    assert VOCAL_FILE in str(err.value)


def test_channels_is_a_parameter(tmp_path):
    for name in (VOCAL_FILE, ACCOMP_FILE):
        np.save(tmp_path / name, np.zeros((2, 8, T), dtype=np.float32))
    assert open_latent_dataset(tmp_path, channels=8).channels == 8


# -------------------------------------------------------------------------------------------- prepared format


def test_prepared_dataset_concatenates_shards_and_groups_by_song(tmp_path):
    pairs = _write_prepared(tmp_path, [3, None, 2, 4])
    ds = open_latent_dataset(tmp_path)
    assert ds.format == MANIFEST_FORMAT and len(ds) == 9
    assert ds.groups.tolist() == [0, 0, 0, 2, 2, 3, 3, 3, 3]  # the song's position in the manifest
    vocal = np.concatenate([p[0] for p in pairs])
    accomp = np.concatenate([p[1] for p in pairs])
    order = [8, 0, 3, 4, 2]
    v, a = ds.read_batch(order)
    np.testing.assert_array_equal(v.numpy(), vocal[order])
    np.testing.assert_array_equal(a.numpy(), accomp[order])
    np.testing.assert_array_equal(ds[5][1].numpy(), accomp[5])
    assert ds.describe()["shards"] == 3
    assert ds.locate(4) == (tmp_path / "shards/0002-s2", 1)
    assert open_latent_dataset(tmp_path / MANIFEST_FILE).describe()["items"] == 9  # the manifest path also opens


def test_manifest_pointing_at_missing_shard(tmp_path):
    _write_prepared(tmp_path, [1, 2])
    for f in (tmp_path / "shards/0001-s1").iterdir():
        f.unlink()
    (tmp_path / "shards/0001-s1").rmdir()
    with pytest.raises(DataError, match="0001-s1, which does not exist"):
        open_latent_dataset(tmp_path)


def test_a_torn_shard_is_named_with_how_to_redo_it(tmp_path):
    _write_prepared(tmp_path, [1, 2])
    torn = tmp_path / "shards/0001-s1" / ACCOMP_FILE
    torn.write_bytes(torn.read_bytes()[:200])
    with pytest.raises(DataError, match=f"{ACCOMP_FILE}: not a readable .npy file") as caught:
        open_latent_dataset(tmp_path)
    assert str(torn) in str(caught.value) and "rerun `samuel prepare " in str(caught.value)


def test_manifest_shard_with_wrong_count_or_no_songs(tmp_path):
    _write_prepared(tmp_path, [2])
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    manifest["songs"][0]["n_chunks"] = 3
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="2 items but") as caught:
        open_latent_dataset(tmp_path)
    assert f" -o {tmp_path}` to redo this song's shard" in str(caught.value)
    manifest["songs"][0]["status"] = "error"
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="zero items"):
        open_latent_dataset(tmp_path)
    manifest["songs"][0].update(status="ok", shard=None)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="lacks a shard path"):
        open_latent_dataset(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"format": "other/9", "songs": []}))
    with pytest.raises(DataError, match="format 'other/9'"):
        open_latent_dataset(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(DataError, match="not a readable JSON manifest"):
        open_latent_dataset(tmp_path)


# ------------------------------------------------------------------------------------------------------- split


def test_split_golden():
    train, val = split_train_val(np.arange(20), val_fraction=0.1, seed=0)
    assert val.tolist() == [4, 19]  # golden: numpy.random.default_rng(0).permutation(20)[:2], sorted
    assert train.tolist() == [i for i in range(20) if i not in (4, 19)]
    assert train.dtype == np.int64 and val.dtype == np.int64


def test_split_by_group_disjoint_covering_and_seeded():
    rng = np.random.default_rng(1)
    groups = rng.permutation(np.repeat(np.arange(30), rng.integers(1, 6, size=30)))  # several items per song
    train, val = split_train_val(groups, val_fraction=0.2, seed=7)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.union1d(train, val), np.arange(groups.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert not set(groups[train]) & set(groups[val]), "a song has chunks on both sides"
    assert np.unique(groups[val]).size == 6  # round(0.2 * 30) groups
    again = split_train_val(groups, val_fraction=0.2, seed=7)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(split_train_val(groups, val_fraction=0.2, seed=8)[1], val)


def test_split_edge_cases():
    assert split_train_val(np.arange(3), val_fraction=0.01)[1].size == 1  # at least one group with >= 2 groups
    assert split_train_val(np.zeros(5, np.int64))[1].size == 0  # one song: nothing to validate on
    assert split_train_val(np.arange(4), val_fraction=0.0)[1].size == 0
    assert split_train_val(np.arange(2), val_fraction=0.9)[0].size == 1  # training keeps a group
    with pytest.raises(ValueError):
        split_train_val(np.arange(4), val_fraction=1.0)


# ------------------------------------------------------------------------------------------------------- stats


def test_norm_stats_match_numpy_over_the_chosen_items_only(tmp_path):
    vocal, accomp = _pair(12)
    vocal[[3, 9]] = 1e6  # validation items with huge values must not move the statistics
    accomp[[3, 9]] = -1e6
    write_latent_pair(tmp_path, vocal, accomp)
    ds = open_latent_dataset(tmp_path)
    train = np.array([0, 1, 2, 4, 5, 6, 7, 8, 10, 11])
    stats = compute_norm_stats(ds, train, items_per_read=3)  # blocks of 3: exercises the merges
    for values, mean, std in ((vocal, stats.vocal_mean, stats.vocal_std),
                              (accomp, stats.accomp_mean, stats.accomp_std)):
        x = values[train].astype(np.float64)
        np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-10)
        np.testing.assert_allclose(std, x.std(axis=(0, 2)), rtol=1e-10)
    assert stats.n_items == 10 and len(stats.vocal_mean) == C
    assert max(stats.vocal_mean) < 10


def test_norm_stats_large_mean_no_cancellation(tmp_path):
    vocal, accomp = _pair(4)
    vocal += 3e3  # a naive float64 E[x^2] - E[x]^2 would lose digits here
    write_latent_pair(tmp_path, vocal, accomp)
    stats = compute_norm_stats(open_latent_dataset(tmp_path), range(4), items_per_read=1)
    np.testing.assert_allclose(stats.vocal_std, vocal.astype(np.float64).std(axis=(0, 2)), rtol=1e-10)


def test_norm_stats_floor_constant_channel(tmp_path):
    vocal, accomp = _pair(3)
    vocal[:, 5, :] = 0.25
    write_latent_pair(tmp_path, vocal, accomp)
    stats = compute_norm_stats(open_latent_dataset(tmp_path), [0, 1, 2])
    assert stats.vocal_std[5] == STD_FLOOR and stats.vocal_mean[5] == 0.25


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_norm_stats_non_finite_names_the_item(tmp_path, bad):
    pairs = _write_prepared(tmp_path, [2, 3])
    accomp = pairs[1][1].copy()
    accomp[2, 7, 3] = bad
    np.save(tmp_path / "shards/0001-s1" / ACCOMP_FILE, accomp)
    ds = open_latent_dataset(tmp_path)
    with pytest.raises(DataError, match=r"0001-s1/latent_accomp.npy: item 2 \(dataset item 4\) contains NaN or inf"):
        compute_norm_stats(ds, range(5))
    compute_norm_stats(ds, [0, 1, 2, 3])  # the bad item is not among these


def test_norm_stats_dict_round_trip_and_inverse():
    rng = np.random.default_rng(0)
    stats = NormStats(
        vocal_mean=tuple(rng.normal(size=C)), vocal_std=tuple(rng.uniform(0.5, 2, size=C)),
        accomp_mean=tuple(rng.normal(size=C)), accomp_std=tuple(rng.uniform(0.5, 2, size=C)),
        n_items=7, source="test",
    )
    again = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again == stats
    x = torch.randn(3, C, T, dtype=torch.float64)
    torch.testing.assert_close(stats.denormalise_accomp(stats.normalise_accomp(x)), x)
    z = stats.normalise_vocal(x[0])  # (C, T) works too
    expected = (x[0] - torch.tensor(stats.vocal_mean, dtype=torch.float64)[:, None]) / torch.tensor(
        stats.vocal_std, dtype=torch.float64)[:, None]
    torch.testing.assert_close(z, expected)
    assert stats.normalise_vocal(x.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="expected"):
        stats.normalise_vocal(torch.zeros(2, C + 1, T))
    with pytest.raises(ValueError, match="missing keys"):
        NormStats.from_dict({"vocal_mean": [0.0]})
    with pytest.raises(ValueError, match="one length per channel"):
        NormStats((0.0,), (1.0,), (0.0, 1.0), (1.0, 1.0), 1, "x")


def test_norm_stats_from_dataset_normalise_to_unit(tmp_path):
    write_latent_pair(tmp_path, *_pair(8))
    ds = open_latent_dataset(tmp_path)
    stats = compute_norm_stats(ds, range(8))
    v, a = ds.read_batch(range(8))
    zv, za = stats.normalise_vocal(v).double(), stats.normalise_accomp(a).double()
    torch.testing.assert_close(zv.mean(dim=(0, 2)), torch.zeros(C, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(za.std(dim=(0, 2), correction=0), torch.ones(C, dtype=torch.float64), atol=1e-5,
                               rtol=0)
