"""Generators behind one interface (baselines.base.Generator), found by name in a lazy registry
(baselines.registry): SAMUeL, MusicGen, Stable Audio Open, Jukebox, reference stems and pre-generated outputs."""
