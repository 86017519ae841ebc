"""The harness. :func:`bench.evaluate.evaluate` owns the passes (params, generate, time, score, report) over one run
folder (:class:`bench.runfolder.RunFolder`), with the manifest (bench.manifest), the embedded synthetic input set
(bench.synthetic), the timing protocol (bench.timing), the one cache primitive (bench.cache), options declared once
(bench.options), the score pass (bench.scoring), and pure statistics: bench.stats (medians, extrapolation),
bench.bootstrap (seeded bootstrap CIs and paired tests) and bench.metrics (Frechet distance, FAD-inf, KAD)."""
