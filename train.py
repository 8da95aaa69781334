#!/usr/bin/env python
"""Train an agent on a secure_env id and score it against every analytic baseline of that env.

    python train.py                                   # tuned PPO on QuantumUav-v0, then the scoreboard
    python train.py --env secure_env/QkdNoma-v0 --algo ppo --timesteps 300000 --out runs/ppo
    python train.py --out runs/ppo --resume           # continue a killed run with its own settings
    python train.py --baselines-only                  # score the baselines alone
    python train.py --hp learning_rate=1e-3 --hp n_steps=64   # override the YAML hyperparameters

Everything is written under --out (default runs/<env name>/<algo>_seed<seed>, or
runs/<env name>/baselines, then _key=value for each setting the command changes): run.json,
checkpoints, monitor logs, model, scores.json, scores.md and plots. A folder that holds another
run is refused (--resume continues the same run, --overwrite replaces it); the same command on a
finished run shows its scoreboard and trains nothing. --timesteps is rounded up to whole rollouts
(what SB3 runs), and the folder name and run.json say that number. Only the library's ids
(secure_env/...) are trained: other ids have no baselines to score against. Bad input (flags,
hyperparameters and their ranges, env keywords, folders) exits with status 2 and a one-line
message before anything is written.
"""
from __future__ import annotations

import sys
from pathlib import Path

from agents.cli import OneLineParser

#: the env that holds every decision of the library (UAV movement, power, subcarriers, QKD time
#: splits); its tuned entry trains in the learnable velocity mode with the safety layer
DEFAULT_ENV = "secure_env/QuantumUav-v0"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="train.py", description=__doc__.splitlines()[0])
    # run settings default to None: a resume takes them from run.json and refuses a conflicting flag
    p.add_argument("--env", default=None, help=f"env id (default {DEFAULT_ENV})")
    p.add_argument("--algo", default=None, help="ppo, sac, td3 or a2c (default ppo)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="training timesteps (default: n_timesteps of the hyperparameter file)")
    p.add_argument("--seed", type=int, default=None,
                   help="training seed (default 0; evaluation seeds are held out)")
    p.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: from the file)")
    p.add_argument("--out", default=None,
                   help="run directory, all output goes here (default runs/<env name>/<algo>_seed<seed>, "
                        "or runs/<env name>/baselines with --baselines-only, then _key=value for each "
                        "setting the command changes)")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per policy")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from checkpoints/model.zip, with the settings of its run.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace whatever run --out holds (its run files are deleted first)")
    p.add_argument("--baselines-only", action="store_true", help="score the baselines only")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", default=[],
                   help="hyperparameter override, value read as YAML, or a YAML mapping (repeatable)")
    p.add_argument("--env-kw", action="append", metavar="KEY=VALUE", default=[],
                   help="env/scenario keyword, value read as YAML, or a YAML mapping (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="check every flag, setting and the run folder, say what would run, write nothing")
    p.add_argument("--pretrain", choices=("auto", "on", "off"), default="auto",
                   help="clone a planner's flights before training (agents/hyperparams/pretrain.yml): auto = "
                        "where its entry applies by default, on = always (an error without an entry), off = never")
    p.add_argument("--vectorized", action="store_true", default=None,
                   help="train on the native batched vector env (gymnasium make_vec vector_entry_point) "
                        "instead of SB3's DummyVecEnv of single envs")
    return p


def _pretrain_words(settings: dict[str, object]) -> str:
    """``, after cloning joint on 80 layouts (+ 2 DAgger rounds)`` when the run pretrains (--pretrain)."""
    pre = settings.get("pretrain")
    if not isinstance(pre, dict):
        return ""
    from agents.imitation import PretrainConfig

    cfg = PretrainConfig.from_mapping(pre)
    return (f", after cloning {cfg.planner}'s flights on {cfg.layouts} layouts (+ {cfg.dagger_rounds} DAgger "
            f"rounds; --pretrain off skips it)")


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
    if args.seed is not None and not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32), got {args.seed}")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if args.resume and args.baselines_only:
        parser.error("--resume continues a training run; --baselines-only trains nothing")

    from agents.evaluation import (baseline_policies, check_env_id, format_scoreboard, held_out_seeds, make_env,
                                   scoreboard, write_scoreboard)
    from agents.factory import algo_class, coerce_numbers, load_hyperparams, parse_overrides
    from agents.plots import plot_trajectories
    from agents.runs import (check_out_dir, clear_run_outputs, default_out_dir, finished_run, out_dir_conflict,
                             read_run, write_run)
    from agents.training import TrainConfig, prepare_run

    settings: dict[str, object] = {}
    done: dict[str, object] | None = None
    try:
        hp = parse_overrides(args.hp, "--hp")
        cli_env_kwargs = coerce_numbers(parse_overrides(args.env_kw, "--env-kw"))
        check_env_id(args.env or DEFAULT_ENV)
        algo_class(args.algo or "ppo")

        def config(env_id: str, algo: str, seed: int, vectorized: bool, resume: bool, out: Path) -> TrainConfig:
            return TrainConfig(env_id=env_id, algo=algo, timesteps=args.timesteps, seed=seed, n_envs=args.n_envs,
                               out=out, resume=resume, hyperparams=hp, env_kwargs=cli_env_kwargs,
                               progress_bar=not args.no_progress, vectorized=vectorized,
                               pretrain={"auto": None, "on": True, "off": False}[args.pretrain])

        fresh = None
        if args.out:
            out = Path(args.out)
        else:  # one folder per env, algo, seed and the settings this command changes
            changed = dict(cli_env_kwargs)
            if not args.baselines_only:
                changed.update(hp)
                changed.update({k: v for k, v in (("timesteps", args.timesteps), ("n_envs", args.n_envs),
                                                  ("vectorized", args.vectorized)) if v is not None})
                if args.timesteps is not None:  # named by the timesteps that will run (whole rollouts)
                    fresh = prepare_run(config(args.env or DEFAULT_ENV, (args.algo or "ppo").lower(),
                                               0 if args.seed is None else args.seed, bool(args.vectorized),
                                               False, Path("runs")))
                    changed["timesteps"] = fresh["timesteps"]
            out = default_out_dir(args.env or DEFAULT_ENV, args.algo or "ppo", 0 if args.seed is None else args.seed,
                                  args.baselines_only, changed)
        check_out_dir(out)
        saved = read_run(out) if args.resume else None
        if args.resume and saved is None:
            raise ValueError(f"--resume: {out} holds no run ({out / 'run.json'} is missing)")
        env_id = args.env or (saved or {}).get("env_id") or DEFAULT_ENV
        algo = (args.algo or (saved or {}).get("algo") or "ppo").lower()
        seed = args.seed if args.seed is not None else int((saved or {}).get("seed", 0))
        vectorized = bool(args.vectorized if args.vectorized is not None else (saved or {}).get("vectorized"))
        check_env_id(env_id)
        algo_class(algo)
        make_env(env_id).close()  # an unknown id is named before the keywords are checked
        if args.baselines_only:
            # the env keywords the agent would train with: the hyperparameter file's, then --env-kw
            yaml_env_kwargs = load_hyperparams(algo, env_id, hp).get("env_kwargs") or {}
            if not isinstance(yaml_env_kwargs, dict):
                raise ValueError(f"env_kwargs of {env_id!r} must be a mapping")
            env_kwargs = {**yaml_env_kwargs, **cli_env_kwargs}
            make_env(env_id, **env_kwargs).close()
            identity = {"kind": "baselines", "env_id": env_id, "env_kwargs": env_kwargs}
            if not baseline_policies(env_id):
                raise ValueError(f"env {env_id!r} has no registered baselines")
        else:
            cfg = config(env_id, algo, seed, vectorized, args.resume, out)
            settings = fresh if fresh is not None and not args.resume else prepare_run(cfg)
            env_kwargs = dict(settings["env_kwargs"])  # type: ignore[arg-type]
            identity = {"kind": "train", **settings}
        if not args.resume and not args.overwrite:
            done = finished_run(out, identity)
            reason = None if done else out_dir_conflict(out, identity)
            if reason:
                raise ValueError(reason)
    except (ValueError, TypeError) as err:  # TypeError: an env constructor refusing a keyword
        parser.error(str(err))
    except ImportError as err:  # an env whose optional dependency is missing
        parser.error(f"{args.env or DEFAULT_ENV}: {err}")

    scores_md = out / "scores.md"
    if done is not None and scores_md.is_file():
        what = ("these baselines' scores" if args.baselines_only
                else f"this run ({done.get('timesteps_done')} timesteps)")
        print(f"{out} already holds {what}, finished: its scoreboard follows "
              f"(--overwrite {'rescores' if args.baselines_only else 'retrains'}; nothing was run)\n")
        print(scores_md.read_text().rstrip())
        return 0
    if args.dry_run:
        if done is not None and not args.baselines_only:
            print(f"dry run: {out} holds this run, trained but not scored: would score it")
        elif args.baselines_only:
            print(f"dry run: would score the baselines of {env_id} -> {out}")
        else:
            what = "resume" if args.resume else "train"
            print(f"dry run: would {what} {algo} on {env_id} (seed {seed}, {settings['timesteps']} timesteps, "
                  f"{settings['n_envs']} envs{_pretrain_words(settings)}) -> {out}"
                  + ("; --overwrite would first delete its run files" if args.overwrite else ""))
        return 0
    if args.overwrite:
        clear_run_outputs(out)
    policies: dict[str, object] = dict(baseline_policies(env_id))
    baseline_names = list(policies)
    if args.baselines_only:
        print(f"scoring the baselines of {env_id} -> {out}")
        write_run(out, {**identity, "status": "running"})
    elif done is not None:  # trained, killed while scoring: score the saved model
        from agents.plots import plot_learning_curve
        from agents.refine import load_agent

        print(f"{out} holds this run trained ({done.get('timesteps_done')} timesteps) but not scored: scoring it")
        policies = {algo: load_agent(out, env_id, env_kwargs, algo), **policies}
    else:
        from agents.plots import plot_learning_curve
        from agents.training import train

        what = f"resuming {out} (settings from its run.json)" if args.resume else f"training -> {out}"
        rounded = ""
        if args.timesteps is not None and settings["timesteps"] != args.timesteps and not args.resume:
            rounded = f" (--timesteps {args.timesteps} rounded up to whole rollouts of {algo})"
        print(f"{what}: {algo} on {env_id}, seed {seed}, {settings['timesteps']} timesteps{rounded}"
              f"{_pretrain_words(settings)}")
        agent, record = train(cfg, settings)
        print(f"trained {algo} for {record['timesteps_done']} timesteps -> {out / 'model.zip'}")
        policies = {algo: agent, **policies}

    board = scoreboard(policies, env_id, held_out_seeds(args.eval_episodes),
                       baseline_names=baseline_names, **env_kwargs)
    json_path, md_path = write_scoreboard(board, out)
    print(format_scoreboard(board))
    print(f"\nwrote {json_path} and {md_path}")
    if args.baselines_only:
        write_run(out, {**identity, "status": "done"})
    else:
        curve = plot_learning_curve(out, f"{algo.upper()} on {env_id}, seed {seed}", board, env_id)
        print(f"wrote {curve}")
    plot = plot_trajectories(policies, env_id, held_out_seeds(1)[0], out, **env_kwargs)
    if plot is not None:
        print(f"wrote {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
