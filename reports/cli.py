"""`samuel-eval`: the benchmark from the command line. It only parses; :func:`bench.evaluate.evaluate` runs.

    samuel-eval --models all --n 100 [--out DIR] [--weights auto|pretrained|random] [--vocals DIR] [--timing ...]
    samuel-eval params --models all [--json]
    samuel-eval report DIR [--html PATH]
    samuel-eval clean DIR [--dry-run]
    samuel-eval score EVAL_DIR --reference REF_DIR [--vocals DIR] [--metrics ...] [--out DIR]

The first form (also ``samuel-eval run ...``) runs the passes (parameters, matched generation, timing, scoring,
report) and leaves everything in DIR: manifest, samples, per-item JSONL, results.json and scores.json with
provenance, the tables and report.html. Every pass resumes: a rerun with the same arguments reuses finished
samples, timings and per-clip scores, and redoes any that are damaged. ``report DIR`` re-renders the tables and
the HTML report from those files without recomputing anything. ``clean DIR`` removes files of earlier runs that
the current manifest and model specs no longer use (the report lists them). ``score EVAL_DIR`` scores a folder of
audio files against references matched by relative path or stem (bench.score_folders). The first form runs
under ``torchrun --nproc_per_node N`` as well: ranks split the items, rank 0 merges, scores and reports.

Exit codes: 0 all done; 1 some items, models, scores or the report failed (each is listed); 2 bad usage;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM): what was finished stays, and the same command resumes from
it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.results import RunResults
from samuel.console import one_line_warnings
from samuel.processes import SIGTERM_EXIT, Terminated, sigterm_as_interrupt

COMMANDS = ("run", "params", "report", "clean", "score")


def build_parser() -> argparse.ArgumentParser:
    from baselines.base import WEIGHTS_MODES
    from bench import options
    from bench.evaluate import EvalConfig

    p = argparse.ArgumentParser(prog="samuel-eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmark (the default command)")
    options.add_options(run, EvalConfig)
    params = sub.add_parser("params", help="exact parameter counts (meta device, no weights)")
    params.add_argument("--models", default="all")
    params.add_argument("--weights", choices=WEIGHTS_MODES, default="auto")
    params.add_argument("--weights-path", action="append", default=[], metavar="NAME=PATH",
                        type=options._argparse_type(options.name_value))
    params.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="re-render the tables and the HTML report of a results folder "
                                           "(no recomputation)")
    report.add_argument("dir", type=Path)
    report.add_argument("--html", type=Path, metavar="PATH", help="default DIR/report.html")
    clean = sub.add_parser("clean", help="remove files of earlier runs that the current run does not use")
    clean.add_argument("dir", type=Path)
    clean.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    from bench.score_folders import ScoreFolders

    score = sub.add_parser("score", help="score a folder of audio files against references matched by path or stem "
                                         "(fadtk's one-liner with CIs, KAD, aesthetics, adherence, the report)")
    score.add_argument("eval_dir", type=Path, metavar="EVAL_DIR", help="the audio files to score")
    options.add_options(score, ScoreFolders)
    return p


def main(argv: list[str] | None = None) -> int:
    one_line_warnings()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*COMMANDS, "-h", "--help"):
        args_list = ["run", *args_list]
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exit_:  # bad usage: argparse has said which flag and why; --help: 0
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        with sigterm_as_interrupt():
            return _command(args, args_list)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt as stop:  # one line instead of a traceback from wherever the run was
        terminated = isinstance(stop, Terminated)
        print(INTERRUPTED.replace("interrupted", "terminated (SIGTERM)", 1) if terminated else INTERRUPTED,
              file=sys.stderr)
        return SIGTERM_EXIT if terminated else 130
    except OSError as err:  # a full disk stops the run (every later write would fail the same way)
        from samuel.atomic import disk_full_message, is_disk_full

        if not is_disk_full(err):
            raise
        print(disk_full_message(err, "samuel-eval"), file=sys.stderr)
        return 1


def _command(args: argparse.Namespace, args_list: list[str]) -> int:
    if args.command == "params":
        return _params(args)
    if args.command == "report":
        return _report(args.dir, args.html, args_list)
    if args.command == "clean":
        return _clean(args.dir, args.dry_run)
    if args.command == "score":
        return _score(args, args_list)
    return _run(args, args_list)


INTERRUPTED = ("samuel-eval: interrupted. Finished samples, timings and per-clip scores are kept (each was written "
               "whole); rerun the same command to resume: it reuses them and redoes the rest, including a model "
               "whose timing was cut short.")


def _params(args: argparse.Namespace) -> int:
    from baselines import registry
    from baselines.base import AdapterError, WeightsChoice

    paths = dict(args.weights_path)
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
               "params_by_component": counts.by_component if counts else None,
               "weights": adapter.status.kind, "source": adapter.parameter_source(),
               "component_sources": adapter.parameter_sources(),
               "method": "exact: the architecture built on the meta device, shared tensors counted once"}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            parts = ", ".join(f"{k} {v:,}" for k, v in (r["params_by_component"] or {}).items())
            total = f"{r['params_total']:,}" if r["params_total"] is not None else "n/a (files)"
            print(f"{r['model']:<20} {total:>16}   {parts}\n{'':<20} source: {r['source']}")
    return 0


def _report(folder: Path, html: Path | None, argv: list[str]) -> int:
    from bench.runfolder import RunFolder
    from reports.render import render

    run = RunFolder(folder)
    if not run.results_path.is_file():
        print(f"samuel-eval report: {run.results_path}: no results.json here (run samuel-eval --out {folder} "
              "first)", file=sys.stderr)
        return 2
    try:
        for p in render(run, html=html, report_command=" ".join(["samuel-eval", *argv]), echo=False):
            print(p)
    except ValueError as err:
        print(f"samuel-eval report: {err}", file=sys.stderr)
        return 2
    return 0


def _clean(folder: Path, dry_run: bool) -> int:
    from bench.evaluate import stale_files
    from bench.runfolder import RunFolder, RunFolderError

    run = RunFolder(folder)
    try:
        with run.lock():
            stale = stale_files(run)
            for path in stale:
                print(("would remove " if dry_run else "removed ") + str(path))
                if not dry_run:
                    path.unlink(missing_ok=True)
    except (RunFolderError, ValueError) as err:
        print(f"samuel-eval clean: {err}", file=sys.stderr)
        return 2
    print(f"{len(stale)} stale file(s) {'found' if dry_run else 'removed'} in {folder}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import options
    from bench.evaluate import EvalConfig, evaluate
    from bench.manifest import ManifestError
    from bench.runfolder import RunFolderError
    from reports.render import ReportRenderer

    try:
        cfg = options.from_namespace(EvalConfig, args)
    except (options.UsageError, ValueError) as err:
        print(f"samuel-eval: {err}", file=sys.stderr)
        return 2
    try:
        result = evaluate(cfg, report=ReportRenderer(argv, echo=True), argv=["samuel-eval", *argv])
    except (ManifestError, RunFolderError) as err:
        print(f"samuel-eval: {err}", file=sys.stderr)
        return 2
    if "format" not in result.results:  # a non-zero rank under torchrun: rank 0 scores and reports
        return result.exit_code
    _summary(RunResults.from_json(result.results, source=cfg.out / "results.json"), scored=cfg.score_random)
    _failures(result.failures)
    return result.exit_code


def _score(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import options
    from bench.manifest import ManifestError
    from bench.runfolder import RunFolderError
    from bench.score_folders import ScoreFolders, score_folders, summary_lines
    from reports.render import ReportRenderer

    try:  # bad usage, found before any work
        cfg = options.from_namespace(ScoreFolders, args, eval_dir=args.eval_dir)
        # the tables are written, not echoed: the summary below lists every number (Table I has columns for some)
        result = score_folders(cfg, report=ReportRenderer(argv, echo=False), argv=["samuel-eval", *argv])
    except (options.UsageError, ManifestError, RunFolderError) as err:
        print(f"samuel-eval score: {err}", file=sys.stderr)
        return 2
    for line in summary_lines(result.run.scores or {}):
        print(line)
    _failures(result.run.failures)
    print(f"run folder: {cfg.out_dir} (scores.json, tables/, report.html; a rerun reuses what is done)",
          file=sys.stderr)
    return result.exit_code


def _failures(failures: list[Any]) -> None:
    if failures:
        print(f"FAILED ({len(failures)}): the run went on without these; exit code 1", file=sys.stderr)
        for f in failures:
            print(f"  - {f.stage} {f.what}: {f.message}", file=sys.stderr)


def _summary(results: RunResults, scored: bool = False) -> None:
    """The closing lines on random weights; ``scored``: --score-random scored their outputs (labelled, apart)."""
    random = [m.weights.message for m in results.models.values() if m.weights is not None and m.weights.is_random]
    if random:
        outputs = ("outputs scored only as a labelled plumbing check (--score-random), never in Table I" if scored
                   else "outputs never scored")
        print(f"RANDOM WEIGHTS (efficiency only; {outputs}):", file=sys.stderr)
        for message in random:
            print(f"  - {message}", file=sys.stderr)
        print("To use real weights: put them in the Hugging Face cache (HF_HUB_CACHE) on this machine, or pass "
              "--weights-path NAME=PATH; SAMUeL needs a checkpoint from `samuel train`. See README.",
              file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
