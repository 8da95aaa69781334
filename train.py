#!/usr/bin/env python
"""Train an agent on a secure_env id and score it against every analytic baseline of that env.

    python train.py                                   # tuned PPO on QuantumUav-v0, then the scoreboard
    python train.py --env secure_env/QkdNoma-v0 --algo ppo --timesteps 300000 --out runs/ppo
    python train.py --out runs/ppo --resume           # continue a killed run from its checkpoint
    python train.py --baselines-only                  # score the baselines alone
    python train.py --hp learning_rate=1e-3 --hp n_steps=64   # override the YAML hyperparameters

Everything is written under --out: checkpoints, monitor logs, model, scores.json, scores.md and
plots. Bad input exits with status 2 and a one-line message.
"""
from __future__ import annotations

import sys
from pathlib import Path

from baselines.cli import OneLineParser

#: the env that holds every decision of the library (UAV movement, power, subcarriers, QKD time
#: splits); its tuned entry trains in the learnable velocity mode with the safety layer
DEFAULT_ENV = "secure_env/QuantumUav-v0"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="train.py", description=__doc__.splitlines()[0])
    p.add_argument("--env", default=DEFAULT_ENV, help=f"env id (default {DEFAULT_ENV})")
    p.add_argument("--algo", default="ppo", help="ppo, sac, td3 or a2c (default ppo)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="training timesteps (default: n_timesteps of the hyperparameter file)")
    p.add_argument("--seed", type=int, default=0, help="training seed (evaluation seeds are held out)")
    p.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: from the file)")
    p.add_argument("--out", default="runs/default", help="run directory (all output goes here)")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per policy")
    p.add_argument("--resume", action="store_true", help="resume from <out>/checkpoints/model.zip")
    p.add_argument("--baselines-only", action="store_true", help="score the baselines only")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", default=[],
                   help="hyperparameter override, value read as YAML (repeatable)")
    p.add_argument("--env-kw", action="append", metavar="KEY=VALUE", default=[],
                   help="env/scenario keyword, value read as YAML (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--vectorized", action="store_true",
                   help="train on the native batched vector env (gymnasium make_vec vector_entry_point) "
                        "instead of SB3's DummyVecEnv of single envs")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        from agents.sweep import main as sweep_main

        return sweep_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.eval_episodes < 1:
        parser.error(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    if args.timesteps is not None and args.timesteps < 0:
        parser.error(f"--timesteps must be >= 0, got {args.timesteps}")
    if args.n_envs is not None and args.n_envs < 1:
        parser.error(f"--n-envs must be >= 1, got {args.n_envs}")

    from agents.evaluation import (baseline_policies, format_scoreboard, held_out_seeds, make_env,
                                   plot_trajectories, scoreboard, write_scoreboard)
    from agents.factory import algo_class, load_hyperparams, parse_overrides

    try:
        algo_class(args.algo)
        hp = parse_overrides(args.hp, "--hp")
        cli_env_kwargs = parse_overrides(args.env_kw, "--env-kw")
        # the env keywords of the run: the hyperparameter file's env_kwargs, then --env-kw
        yaml_env_kwargs = load_hyperparams(args.algo, args.env, hp).get("env_kwargs") or {}
        if not isinstance(yaml_env_kwargs, dict):
            raise ValueError(f"env_kwargs of {args.env!r} must be a mapping")
        env_kwargs = {**yaml_env_kwargs, **cli_env_kwargs}
        make_env(args.env, **env_kwargs).close()
    except ValueError as err:
        parser.error(str(err))
    except ImportError as err:  # an env whose optional dependency is missing
        parser.error(f"{args.env}: {err}")

    out = Path(args.out)
    policies: dict[str, object] = dict(baseline_policies(args.env))
    baseline_names = list(policies)
    if not args.baselines_only:
        from agents.training import TrainConfig, plot_learning_curve, train

        cfg = TrainConfig(env_id=args.env, algo=args.algo.lower(), timesteps=args.timesteps,
                          seed=args.seed, n_envs=args.n_envs, out=out, resume=args.resume, hyperparams=hp,
                          env_kwargs=cli_env_kwargs, progress_bar=not args.no_progress,
                          vectorized=args.vectorized)
        try:
            agent, record = train(cfg)
        except (ValueError, TypeError) as err:  # bad hyperparameters reach SB3's constructor
            parser.error(f"training could not start: {err}")
        print(f"trained {args.algo} for {record['timesteps_done']} timesteps -> {out / 'model.zip'}")
        policies = {args.algo.lower(): agent, **policies}
        plot_learning_curve(out, f"{args.algo.upper()} on {args.env}")
    elif not policies:
        parser.error(f"env {args.env!r} has no registered baselines")

    board = scoreboard(policies, args.env, held_out_seeds(args.eval_episodes),
                       baseline_names=baseline_names, **env_kwargs)
    json_path, md_path = write_scoreboard(board, out)
    print(format_scoreboard(board))
    print(f"\nwrote {json_path} and {md_path}")
    plot = plot_trajectories(policies, args.env, held_out_seeds(1)[0], out, **env_kwargs)
    if plot is not None:
        print(f"wrote {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
