"""``python -m chaos --scenario NAME --seed N --duration S [--nodes 5]`` runs one scenario;
``python -m chaos --all`` runs the default set and writes chaos/REPORT.md;
``python -m chaos --check HISTORY.jsonl`` checks a recorded history again;
``python -m chaos --list`` lists the scenarios."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import checker, report
from .history import load
from .netns import ENV_KEY
from .run import HERE, run
from .scenarios import DEFAULT_SET, registry
from .support import unavailable


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = registry()
    if args.list:
        for s in scenarios.values():
            print(f"{s.name:28} {s.summary}")
        return 0
    if args.check:
        result = checker.check(load(args.check))
        print(json.dumps(result.as_dict(), indent=1, default=str))
        return 0 if result.valid else 1
    if args.all:
        plan = [(name, seed, dur * args.scale) for name, seed, dur in DEFAULT_SET]
    elif args.scenario:
        if args.scenario not in scenarios:
            print(f"unknown scenario {args.scenario!r}; --list shows them", file=sys.stderr)
            return 2
        plan = [(args.scenario, args.seed, args.duration)]
    else:
        _parser().print_help()
        return 2
    return _run_plan(plan, scenarios, args)


def _run_plan(plan, scenarios, args) -> int:
    outcomes, skipped = [], {}
    for name, seed, duration in plan:
        scenario = scenarios[name]
        why = unavailable(scenario.needs)
        if why:
            skipped[name] = why
            print(f"{name}: skipped ({why})", flush=True)
            continue
        outcome = run(scenario, seed, duration, nodes=args.nodes, keep=args.keep,
                      run_dir=args.run_dir if len(plan) == 1 else None)
        outcomes.append(outcome)
        if os.environ.get(ENV_KEY):
            continue  # inside the namespaces: the outer run prints
        print(f"{name} seed {seed}: {report.verdict(outcome)} — "
              f"{checker.summary_line(outcome.result)} [{outcome.wall_s}s, {outcome.run_dir}]",
              flush=True)
    if args.all or args.report:
        path = args.report or os.path.join(HERE, "REPORT.md")
        report.write_report(path, outcomes, {n: s.summary for n, s in scenarios.items()}, skipped)
        print(f"report: {path}")
    return 0 if all(o.as_expected for o in outcomes) else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", help="scenario name (--list)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=40.0, help="seconds of faults")
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--all", action="store_true", help="the default set; writes REPORT.md")
    p.add_argument("--scale", type=float, default=1.0, help="multiply --all durations")
    p.add_argument("--report", help="write a report here (default with --all: chaos/REPORT.md)")
    p.add_argument("--keep", action="store_true", help="keep data dirs of valid runs too")
    p.add_argument("--run-dir", help="where the run keeps its files (one scenario only)")
    p.add_argument("--check", metavar="HISTORY", help="check a recorded history")
    p.add_argument("--list", action="store_true")
    return p


if __name__ == "__main__":
    sys.exit(main())
