"""The harness: matched generation, timing, parameter counts and statistics over one output folder
(bench.run), with the manifest (bench.manifest), the embedded synthetic input set (bench.synthetic), the timing
protocol (bench.timing), and pure statistics: bench.stats (medians, extrapolation), bench.bootstrap
(seeded bootstrap CIs and paired tests) and bench.metrics (Frechet distance, FAD-inf, KAD)."""
