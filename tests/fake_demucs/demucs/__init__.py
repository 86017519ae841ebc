"""A stand-in for Demucs (tests only). It tests SAMUeL's side of the `python -m demucs.separate` CLI contract,
not Demucs: it parses the same arguments and writes `vocals.wav` / `no_vocals.wav` where Demucs would."""
