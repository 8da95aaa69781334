"""``python -m agents.benchmark --suite SUITE --preset PRESET``: see :mod:`agents.benchmark`."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import OneLineParser, require_ray

    p = OneLineParser(prog="python -m agents.benchmark",
                      description="Train and score agents against the papers' optimisers on a suite's unseen test layouts.")
    p.add_argument("--suite", required=True, help="a suite of the suite file (uav, quantum, leaderboard, all)")
    p.add_argument("--preset", default="standard", help="smoke, standard or full (default standard)")
    p.add_argument("--suite-file", default=None, help="a suite YAML file (default: the library's, agents/benchmark/suites/v1.yaml)")
    p.add_argument("--out", default=None, help="results folder (default runs/benchmark/<suite>_<preset>)")
    p.add_argument("--algo", action="append", default=[], metavar="package.module:Class",
                   help="also score a custom policy with SB3's predict interface, built as Class(env) (repeatable)")
    p.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)")
    p.add_argument("--sequential", action="store_true", help="run everything in this process, one after the other (no Ray)")
    p.add_argument("--dry-run", action="store_true", help="check the suite and list the trials, then stop")
    try:
        args = p.parse_args(argv)
        if args.num_cpus is not None and args.num_cpus < 1:
            p.error(f"--num-cpus must be >= 1, got {args.num_cpus}")
        from agents.benchmark.suite import load_plan
        from agents.benchmark.trials import load_custom
        from agents.runs import check_out_dir

        try:
            plan = load_plan(args.suite, args.preset, args.suite_file, custom=tuple(args.algo))
            for spec in args.algo:
                load_custom(spec)
            _check_trials(plan)
            out = Path(args.out) if args.out else Path("runs") / "benchmark" / f"{args.suite}_{args.preset}"
            check_out_dir(out, "--out")
        except ValueError as err:
            p.error(str(err))
        if not args.sequential and not args.dry_run:
            require_ray(p)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    from agents.benchmark.runner import finished, machine, run_benchmark, trial_dir, write_manifest

    if args.dry_run:
        done = 0
        for t in plan.trials:
            is_done = finished(trial_dir(out, t), t) is not None
            done += is_done
            what = f"{t.algo} {t.timesteps} timesteps" if t.algo else (f"refines {t.refine}" if t.refine else "custom")
            print(f"{t.trial_id}: {what}" + (" (finished)" if is_done else ""))
        print(f"{len(plan.trials)} trials ({done} finished) on {len(plan.tasks)} tasks -> {out}; dry run, nothing started")
        return 0
    command = "python -m agents.benchmark " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    run = run_benchmark(plan, out, address=args.address, num_cpus=args.num_cpus, sequential=args.sequential,
                        progress=lambda line: print(line, flush=True))
    write_manifest(out, plan, run, command)
    if run["missing_baselines"]:
        print(f"python -m agents.benchmark: error: baselines failed ({run['missing_baselines']}); no results written; "
              f"see {out / 'benchmark.json'} and run the same command again", file=sys.stderr)
        return 1
    from agents.benchmark.report import collect, write_results

    header = {"command": command, "machine": machine(), "wall_s": run["wall_s"], "trials_run": run["trials_run"],
              "trials_reused": run["trials_reused"], "plans_computed": run["plans_computed"],
              "plans_reused": run["plans_reused"], "code_version": run["code_version"],
              "trial_compute_s": sum(float(r.get("wall_s", 0.0)) for r in run["results"]),
              "planning_s": sum(float(rec.get("decision_time_s", 0.0)) for task in run["baselines"].values()
                                for recs in task.values() for rec in recs)}
    summary = collect(plan, run["results"], run["baselines"])
    paths = write_results(summary, plan, out, header)
    print((out / "report.md").read_text())
    print(f"{run['trials_run']} trials run, {run['trials_reused']} reused, {len(run['failures'])} failed; "
          f"{run['plans_computed']} baseline episodes planned, {run['plans_reused']} reused; "
          f"{run['wall_s']:.1f} s; wrote " + ", ".join(str(x) for x in paths))
    if run["failures"]:
        print(f"python -m agents.benchmark: error: {len(run['failures'])} trial(s) failed (errors in "
              f"{out / 'benchmark.json'}); the report holds the others; run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def _check_trials(plan) -> None:  # noqa: ANN001
    """Every trained (task, algorithm) passes :func:`agents.training.prepare_run` before anything starts."""
    from agents.benchmark.trials import trial_config
    from agents.training import prepare_run

    seen = set()
    for t in plan.trials:
        if t.algo is None or (t.task, t.algorithm) in seen:
            continue
        seen.add((t.task, t.algorithm))
        task = plan.tasks[t.task]
        try:
            prepare_run(trial_config(t, task, Path("unused")))
        except ValueError as err:
            raise ValueError(f"{t.task}/{t.algorithm}: {err}") from None


if __name__ == "__main__":
    sys.exit(main())
