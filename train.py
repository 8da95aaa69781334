#!/usr/bin/env python
"""Train an agent on a secure_env id and score it against every analytic baseline of that env.

    python train.py --baselines-only            # score the baselines of the default env
    python train.py --env secure_env/QkdNoma-v0 --baselines-only --eval-episodes 20 --out runs/x

Bad flags exit with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_ENV = "secure_env/QkdNoma-v0"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default=DEFAULT_ENV, help=f"env id (default {DEFAULT_ENV})")
    p.add_argument("--seed", type=int, default=0, help="seed of the run")
    p.add_argument("--out", default="runs/default", help="run directory (all output goes here)")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per policy")
    p.add_argument("--baselines-only", action="store_true", help="score the baselines only")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.eval_episodes < 1:
        parser.error(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    from agents.evaluation import (baseline_policies, format_scoreboard, held_out_seeds, make_env,
                                   scoreboard, write_scoreboard)

    try:
        make_env(args.env).close()
    except ValueError as err:
        parser.error(str(err))
    if not args.baselines_only:
        parser.error("training is not implemented yet: use --baselines-only")
    policies = baseline_policies(args.env)
    if not policies:
        parser.error(f"env {args.env!r} has no registered baselines")
    board = scoreboard(policies, args.env, held_out_seeds(args.eval_episodes),
                       baseline_names=policies)
    json_path, md_path = write_scoreboard(board, Path(args.out))
    print(format_scoreboard(board))
    print(f"\nwrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
