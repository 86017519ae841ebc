"""`samuel-eval`: the benchmark from the command line.

    samuel-eval --models all --n 100 [--out DIR] [--weights auto|pretrained|random] [--vocals DIR] [--timing ...]
    samuel-eval params --models all [--json]
    samuel-eval report DIR [--html PATH]

The first form (also ``samuel-eval run ...``) runs the passes (parameters, matched generation, timing, scoring,
report) and leaves everything in DIR: manifest, samples, per-item JSONL, results.json and scores.json with
provenance, the tables and report.html. Every pass resumes: a rerun with the same arguments reuses finished
samples, timings and per-clip scores. ``report DIR`` re-renders the tables and the HTML report from those files
without recomputing anything. It runs under ``torchrun --nproc_per_node N`` as well: ranks split the items,
rank 0 merges, scores and reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("run", "params", "report")
PASSES = ("params", "generate", "time", "score", "report")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"samuel-eval: {flag} takes NAME=VALUE, got {v!r}")
        out[name] = rest
    return out


def _options(values: list[str]) -> dict[str, dict[str, Any]]:
    """``--option samuel.steps=10`` -> {"samuel": {"steps": 10}} (values parsed as JSON when they parse)."""
    out: dict[str, dict[str, Any]] = {}
    for key, raw in _pairs(values, "--option").items():
        model, dot, opt = key.partition(".")
        if not dot or not opt:
            raise SystemExit(f"samuel-eval: --option takes MODEL.KEY=VALUE, got {key!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[opt] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    from baselines.base import WEIGHTS_MODES

    p = argparse.ArgumentParser(prog="samuel-eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmark (the default command)")
    run.add_argument("--models", default="all", help="'all' or a comma-separated list; outputs:NAME=DIR adds a "
                     "folder of pre-generated files")
    # -n / --items too: under torchrun, torchrun's own parser takes "--n" for an abbreviation of its options
    run.add_argument("--n", "-n", "--items", dest="n", type=int, default=100, help="items in the manifest")
    run.add_argument("--out", type=Path, default=Path("samuel-eval-out"))
    run.add_argument("--weights", choices=WEIGHTS_MODES, default="auto",
                     help="auto: pretrained where found, random otherwise (said per model)")
    run.add_argument("--weights-path", action="append", default=[], metavar="NAME=PATH",
                     help="where a model's weights are: a local path or a Hugging Face id (read from the cache)")
    run.add_argument("--option", action="append", default=[], metavar="MODEL.KEY=VALUE",
                     help="adapter option, e.g. samuel.steps=50, samuel.preset=tiny, musicgen-small.top_k=250")
    run.add_argument("--vocals", type=Path, help="a folder of vocal files (default: the embedded synthetic set)")
    run.add_argument("--references", type=Path, help="true accompaniments for --vocals, matched by file stem")
    run.add_argument("--prompt", help="text prompt for text-conditioned models (with --vocals)")
    run.add_argument("--duration", type=float, help="seconds per item (default 47.55, one SAMUeL chunk)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--timing", choices=["auto", "full", "extrapolate"], default="auto",
                     help="auto: each model's default (extrapolate for the large baselines)")
    run.add_argument("--time-items", type=int, default=6, help="items timed per model (>= 6 for a 95%% CI)")
    run.add_argument("--time-budget", type=float, default=-1.0, metavar="SECONDS",
                     help="stop timing a model's further items after this long (>= 2 items are always timed); "
                          "default: 200 s on CPU, none on GPU")
    run.add_argument("--units", type=int, help="steps/frames measured per item with --timing extrapolate")
    run.add_argument("--passes", default=",".join(PASSES), help=f"any of {', '.join(PASSES)}")
    run.add_argument("--retime", action="store_true",
                     help="re-time models whose stored timing matches (default: a resumed run reuses it)")
    run.add_argument("--html", type=Path, metavar="PATH", help="where the HTML report goes (default DIR/report.html)")
    run.add_argument("--metrics", default="signal,adherence,aesthetics,fad",
                     help="score groups: signal, adherence, aesthetics (audiobox-aesthetics), fad (FAD/KAD/APA)")
    run.add_argument("--embedders", default="vggish", help="FAD embedders, comma-separated (vggish, "
                     "clap-laion-audio, clap-laion-music, encodec-emb)")
    run.add_argument("--embedder-weights", action="append", default=[], metavar="NAME=PATH",
                     help="an embedder's checkpoint: a local path or a Hugging Face id (read from the cache)")
    run.add_argument("--aesthetics-weights", metavar="PATH",
                     help="audiobox-aesthetics checkpoint (default: facebook/audiobox-aesthetics from the cache)")
    run.add_argument("--fad-reference", type=Path, metavar="DIR|NPZ",
                     help="FAD reference: an audio folder or a statistics .npz with <embedder>.mu/.cov keys "
                          "(default: the items' true accompaniments)")
    run.add_argument("--score-random", action="store_true",
                     help="also score samples written by random-weight models (labelled; never in Table I)")
    run.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for every CI")
    run.add_argument("--generate-random", action="store_true",
                     help="also write samples from random-weight models (labelled .random; never scored)")
    run.add_argument("--device", default="cpu")
    run.add_argument("--no-progress", action="store_true")
    params = sub.add_parser("params", help="exact parameter counts (meta device, no weights)")
    params.add_argument("--models", default="all")
    params.add_argument("--weights", choices=WEIGHTS_MODES, default="auto")
    params.add_argument("--weights-path", action="append", default=[], metavar="NAME=PATH")
    params.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="re-render the tables and the HTML report of a results folder "
                                           "(no recomputation)")
    report.add_argument("dir", type=Path)
    report.add_argument("--html", type=Path, metavar="PATH", help="default DIR/report.html")
    return p


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*COMMANDS, "-h", "--help"):
        args_list = ["run", *args_list]
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "params":
            return _params(args)
        if args.command == "report":
            return _report(args.dir, args.html, args_list)
        return _run(args, args_list)
    except BrokenPipeError:
        return 0


def _params(args: argparse.Namespace) -> int:
    from baselines import registry
    from baselines.base import AdapterError, WeightsChoice

    paths = _pairs(args.weights_path, "--weights-path")
    try:
        specs = registry.expand(args.models)
    except registry.UnknownModelError as err:
        print(f"samuel-eval params: {err}", file=sys.stderr)
        return 2
    rows = []
    for spec in specs:
        try:
            adapter = registry.create(spec, WeightsChoice(args.weights, paths.get(spec)))
            counts = adapter.parameter_counts()
        except AdapterError as err:
            print(f"samuel-eval params: {spec}: {err}", file=sys.stderr)
            return 2
        row = {"model": adapter.name, "params_total": counts.total if counts else None,
               "params_by_component": counts.by_component if counts else None}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            parts = ", ".join(f"{k} {v:,}" for k, v in (r["params_by_component"] or {}).items())
            total = f"{r['params_total']:,}" if r["params_total"] is not None else "n/a (files)"
            print(f"{r['model']:<20} {total:>16}   {parts}")
    return 0


def _report(folder: Path, html: Path | None, argv: list[str]) -> int:
    path = folder / "results.json"
    if not path.is_file():
        print(f"samuel-eval report: {path}: no results.json here (run samuel-eval --out {folder} first)",
              file=sys.stderr)
        return 2
    try:
        for p in _render(folder, echo=False):
            print(p)
        print(_write_html(folder, html, argv))
    except ValueError as err:
        print(f"samuel-eval report: {err}", file=sys.stderr)
        return 2
    return 0


def _write_html(folder: Path, html: Path | None, argv: list[str]) -> Path:
    from reports.html import write_report

    return write_report(folder, html, report_command=" ".join(["samuel-eval", *argv]))


def _render(folder: Path, echo: bool) -> list[Path]:
    """Tables I and II from DIR/results.json and DIR/scores.json (when scored); nothing is recomputed."""
    from bench.score import read_scores
    from reports.table1 import table1, write_table1
    from reports.table2 import table2, write_table2
    from reports.tables import to_markdown

    results = json.loads((folder / "results.json").read_text())
    written = write_table2(results, folder / "tables")
    scores = read_scores(folder)
    if scores is not None:
        written += write_table1(scores, folder / "tables", results)
    if echo:
        print(to_markdown(table2(results)))
        if scores is not None:
            print(to_markdown(table1(scores, results)))
    return written


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from baselines import registry
    from bench.manifest import ManifestError
    from bench.run import RunConfig, run
    try:
        models = tuple(registry.expand(args.models))
    except registry.UnknownModelError as err:
        print(f"samuel-eval: {err}", file=sys.stderr)
        return 2
    passes = tuple(p.strip() for p in args.passes.split(",") if p.strip())
    unknown = sorted(set(passes) - set(PASSES))
    if unknown:
        print(f"samuel-eval: unknown pass(es) {unknown}; choose from {', '.join(PASSES)}", file=sys.stderr)
        return 2
    from bench.score import METRIC_GROUPS, ScoreConfig

    groups = tuple(g.strip() for g in args.metrics.split(",") if g.strip())
    if bad := sorted(set(groups) - set(METRIC_GROUPS)):
        print(f"samuel-eval: unknown metric group(s) {bad}; choose from {', '.join(METRIC_GROUPS)}", file=sys.stderr)
        return 2
    score_cfg = ScoreConfig(groups=groups, embedders=tuple(e.strip() for e in args.embedders.split(",") if e.strip()),
                            embedder_weights=_pairs(args.embedder_weights, "--embedder-weights"),
                            aesthetics_weights=args.aesthetics_weights, fad_reference=args.fad_reference,
                            score_random=args.score_random, resamples=args.resamples, seed=args.seed,
                            device=args.device)
    cfg = RunConfig(out=args.out, models=models, n=args.n, weights=args.weights,
                    weights_paths=_pairs(args.weights_path, "--weights-path"), model_options=_options(args.option),
                    vocals=args.vocals, references=args.references, prompt=args.prompt, duration_s=args.duration,
                    seed=args.seed, timing=args.timing, time_items=args.time_items, units=args.units,
                    time_budget_s=args.time_budget,
                    generate_random=args.generate_random, retime=args.retime, device=args.device,
                    passes=tuple(p for p in passes if p not in ("score", "report")),
                    progress=not args.no_progress)
    from bench.progress import Stages

    stages = Stages(len(models) + ("score" in passes) + ("report" in passes))
    try:
        results = run(cfg, argv=["samuel-eval", *argv], stages=stages)
    except ManifestError as err:
        print(f"samuel-eval: {err}", file=sys.stderr)
        return 2
    if "format" not in results:  # a non-zero rank under torchrun: rank 0 scores and reports
        return 0
    if "score" in passes:
        from bench.manifest import MANIFEST_NAME, Manifest
        from bench.score import score

        stages.start("score (per-clip records are reused on resume)")
        score(args.out, Manifest.read(args.out / MANIFEST_NAME), score_cfg, progress=not args.no_progress)
    _render(args.out, echo=True)
    status = 0
    if "report" in passes:
        stages.start("report")
        try:
            print(f"report: {_write_html(args.out, args.html, argv)}", file=sys.stderr)
        except Exception as err:  # the tables are written; say what failed and exit non-zero
            print(f"samuel-eval: the HTML report failed: {type(err).__name__}: {err}", file=sys.stderr)
            status = 1
    stages.finish()
    _summary(results)
    return status


def _summary(results: dict[str, Any]) -> None:
    random = [(n, e["weights"]["message"]) for n, e in results["models"].items()
              if e.get("weights", {}).get("kind") == "random"]
    if random:
        print("RANDOM WEIGHTS (efficiency only; outputs never scored):", file=sys.stderr)
        for _, message in random:
            print(f"  - {message}", file=sys.stderr)
        print("To use real weights: put them in the Hugging Face cache (HF_HUB_CACHE) on this machine, or pass "
              "--weights-path NAME=PATH; SAMUeL needs a checkpoint from `samuel train`. See README.",
              file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
