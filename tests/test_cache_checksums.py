"""Stored JSON entries carry the checksum of their values: an edited entry is redone, never served (bench.cache)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.cache import BadEntry, Cache, JsonStore, Key, values_checksum

KEY = Key("timing", "abc", {"model": {"name": "m"}})


def test_a_value_reads_back_as_written_with_numpy_scalars_tuples_and_nan(tmp_path: Path) -> None:
    store, path = JsonStore(), tmp_path / "e.json"
    store.write(path, KEY, {"seconds": np.float32(1.5), "items": (1, 2), "n": np.int64(3), "sd": math.nan})
    got = store.read(path, KEY)
    assert got["seconds"] == 1.5 and got["items"] == [1, 2] and got["n"] == 3 and math.isnan(got["sd"])
    assert json.loads(path.read_text())["value_sha256"] == values_checksum(got)


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda d: d["value"].update(seconds=0.5), "changed after they were written"),
    (lambda d: d.pop("value_sha256"), "without a checksum"),
])
def test_an_edited_or_unchecked_entry_is_redone_and_named(tmp_path: Path, edit, reason) -> None:
    path = tmp_path / "e.json"
    cache: Cache = Cache(lambda key: path, JsonStore())
    assert cache.get(KEY, lambda: {"seconds": 2.0})["seconds"] == 2.0
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(BadEntry, match=reason):
        JsonStore().read(path, KEY)
    again: Cache = Cache(lambda key: path, JsonStore())
    assert again.get(KEY, lambda: {"seconds": 2.0})["seconds"] == 2.0
    assert [e.outcome for e in again.events] == ["redone"] and reason in again.events[0].reason
    assert JsonStore().read(path, KEY) == {"seconds": 2.0}  # rewritten whole


def test_the_checksum_ignores_key_order_and_spacing_but_not_values() -> None:
    assert values_checksum({"a": 1, "b": [1.0, 2]}) == values_checksum(json.loads('{ "b": [1.0, 2], "a": 1 }'))
    assert values_checksum({"a": 1.0}) != values_checksum({"a": 1.0000000001})
