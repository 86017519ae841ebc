"""Fake `python -m demucs.separate --two-stems vocals -n MODEL -o OUT MIXTURE...` (tests only).

Writes OUT/MODEL/<mixture stem>/vocals.wav = 0.25 x mixture and no_vocals.wav = 0.75 x mixture, at the
mixture's own rate, plus args.json recording the command line it got, so a test can check the contract.
A mixture whose path contains "fail" makes it exit with status 3, as a crashing Demucs would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demucs.separate")
    parser.add_argument("tracks", nargs="+", type=Path)
    parser.add_argument("--two-stems", dest="two_stems", required=True)
    parser.add_argument("-n", "--name", required=True)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.two_stems != "vocals":
        parser.error("this fake only knows --two-stems vocals")
    for track in args.tracks:
        if "fail" in str(track):
            print(f"fake demucs: cannot separate {track}", file=sys.stderr)
            return 3
        data, rate = sf.read(str(track), dtype="float32", always_2d=True)
        folder = args.out / args.name / track.name.rsplit(".", 1)[0]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / "vocals.wav"), 0.25 * data, rate, subtype="FLOAT")
        sf.write(str(folder / "no_vocals.wav"), 0.75 * data, rate, subtype="FLOAT")
        (folder / "args.json").write_text(json.dumps(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
