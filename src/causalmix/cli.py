"""`causalmix <subcommand>`: Hydra overrides for the experiment commands, flags for the CSV tools.

  causalmix reproduce [--dry-run] [overrides...]   run every notebook through papermill, then build the book
  causalmix sweep [--dry-run] [overrides...]       the proxy sweep into the run store (skips finished runs)
  causalmix fit --runs R.csv --treatment A,B,C --covariates X1,X2 --outcome Y --out DIR
  causalmix recommend --model DIR --state STATE.csv [--policy analytic|search] [--radius R] [--step full|scaled]
  causalmix regmix --ratios R.csv --metrics M.csv --target COL [--predict T.csv --out P.csv]
"""
from __future__ import annotations

import argparse
import sys

from causalmix.errors import ConfigError


def _reproduce(a):
    from causalmix.config import compose
    from causalmix.experiments.reproduce import reproduce
    cfg = compose(a.overrides)
    if a.dry_run:
        return _dry_run(cfg, "reproduce")
    reproduce(cfg, a.overrides)


def _dry_run(cfg, what):
    from causalmix.experiments.dryrun import plan
    print("\n".join(plan(cfg, what)))


def _sweep(a):
    from causalmix.config import compose
    from causalmix.experiments.sweep import export, run_sweep
    cfg = compose(a.overrides)
    if a.dry_run:
        return _dry_run(cfg, "sweep")
    df = run_sweep(cfg)
    mix, met = export(cfg)
    print(f"{len(df)} runs; AvgDev mean {df.avg_dev.mean():.2f} (min {df.avg_dev.min():.2f}, "
          f"max {df.avg_dev.max():.2f}); exported {mix} and {met}")


def _bench(a):
    from causalmix.experiments.bench import main
    main(a.overrides)


def _fit(a):
    from causalmix.causal.estimator import main_fit
    main_fit(a.runs, a.treatment, a.covariates, a.outcome, a.out, estimator=a.estimator,
             reference=a.reference, minimize=a.minimize, features=a.features,
             training_set=[t.strip() for t in a.training_set.split(",") if t.strip()])


def _recommend(a):
    from causalmix.causal.policy import main_recommend
    main_recommend(a.model, a.state, policy=a.policy, radius=a.radius, reference_mixture=a.reference_mixture,
                   z=a.z, floor=a.floor, step=a.step)


def _regmix(a):
    from causalmix.causal.baselines import main_regmix
    main_regmix(a.ratios, a.metrics, a.target, predict=a.predict, out=a.out, minimize=a.minimize, seed=a.seed)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="causalmix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, help_ in [("reproduce", _reproduce, "run the notebooks and build the book"),
                            ("sweep", _sweep, "run the proxy sweep"),
                            ("bench", _bench, "measure each stage's speed against the matmul peak (JSON)")]:
        s = sub.add_parser(name, help=help_)
        s.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scale=smoke data.pool_size=400")
        s.add_argument("--dry-run", action="store_true",
                       help="say what would be reused and what recomputed, and why; compute nothing")
        s.set_defaults(fn=fn)
    s = sub.add_parser("fit", help="fit the causal model on a CSV of runs")
    s.add_argument("--runs", required=True)
    s.add_argument("--treatment", required=True, help="comma list of mixture-weight columns (rows sum to 1)")
    s.add_argument("--covariates", required=True, help="comma list of pool-state columns")
    s.add_argument("--outcome", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--estimator", default="causal_forest", choices=["causal_forest", "linear"])
    s.add_argument("--reference", default=None, help="treatment column to drop (default: the last)")
    s.add_argument("--minimize", action="store_true", help="lower outcome is better (a loss)")
    s.add_argument("--features", default="sqrt", choices=["sqrt", "linear"],
                   help="how shares enter the model: sqrt (diminishing returns, default) or linear")
    s.add_argument("--training-set", default="",
                   help="comma list of training-set terms: repetition (needs share_<domain> columns) and/or "
                        "covariate prefixes such as ws,dup,len (mixture-weighted; needs <prefix>_<domain>)")
    s.set_defaults(fn=_fit)
    s = sub.add_parser("recommend", help="propose a mixture per row of covariates")
    s.add_argument("--model", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--policy", default="analytic", choices=["analytic", "search"])
    s.add_argument("--radius", type=float, default=0.3)
    s.add_argument("--reference-mixture", default="mean", help="mean | equal | path to a one-row CSV")
    s.add_argument("--z", type=float, default=1.0, help="conservative shrinkage in standard errors")
    s.add_argument("--floor", type=float, default=0.0, help="minimum share per domain")
    s.add_argument("--step", default="full", choices=["full", "scaled"],
                   help="analytic policy: move the full radius, or scale it by the returns the shrinkage leaves")
    s.set_defaults(fn=_recommend)
    s = sub.add_parser("regmix", help="RegMix: LightGBM on the mixture alone")
    s.add_argument("--ratios", required=True)
    s.add_argument("--metrics", required=True)
    s.add_argument("--target", required=True)
    s.add_argument("--predict", default=None)
    s.add_argument("--out", default=None)
    s.add_argument("--minimize", action="store_true")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_regmix)
    return p


class _UsageError(Exception):
    """A bad flag or a missing argument: argparse's message, shown as one line (no usage block)."""


def _one_line_errors(p: argparse.ArgumentParser) -> None:
    """argparse prints its whole usage block before an error; we print only `prog: error: message`."""
    def error(message, prog=p.prog):
        raise _UsageError(f"{prog}: error: {message}; see `{prog} --help`")
    p.error = error
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _one_line_errors(sub)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    _one_line_errors(p)
    try:
        a = p.parse_args(argv)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        a.fn(a)
    except ConfigError as e:
        print(f"causalmix {a.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:   # reproduce.ReproduceError: a failed notebook or book build, one line
        if type(e).__name__ != "ReproduceError":
            raise
        print(f"causalmix {a.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
