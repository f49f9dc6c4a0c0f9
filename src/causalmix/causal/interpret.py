"""Reading a fitted MixtureEffectModel: econml's single-tree interpreters and a strategy in words.

Three views of theta(x), the (K-1) marginal returns of moving share from the reference domain to each
other domain in pool state x:

- `SingleTreeCateInterpreter`: one shallow multi-output regression tree fitted to theta(x) over the given
  states: where in covariate space the returns differ;
- `SingleTreePolicyInterpreter`: one shallow policy tree whose leaves each pick the best action among
  "keep the reference" (value 0) and "move share from the reference to domain d" (value theta_d(x)),
  i.e. what the model would do with a small move of share, by region of pool state;
- `strategy_text`: sentences computed from the trees and from theta(x) that say which domain the model
  moves share to, and from which, in which states, with the numbers behind each claim.

Everything here reads a fitted model and a covariate table; nothing refits the causal model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from causalmix.errors import ConfigError


def _short(name: str) -> str:
    return name[2:] if name.startswith("w_") else name


@dataclass
class Interpretation:
    """The two fitted interpreters and what they were fitted on."""
    cate: object                 # econml SingleTreeCateInterpreter, fitted
    policy: object               # econml SingleTreePolicyInterpreter, fitted
    covariates: list[str]
    domains: list[str]           # non-reference domains, in theta's column order (short names)
    reference: str               # short name
    X: np.ndarray                # (n, p) states the trees were fitted on
    theta: np.ndarray            # (n, K-1) point estimates at those states
    stderr: np.ndarray           # (n, K-1)
    notes: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        """Policy tree's treatment names: action 0 keeps the reference, action j moves share to domain j."""
        return [f"keep {self.reference}"] + [f"to {d}" for d in self.domains]


class _Returns:
    """What both interpreters read: the model's marginal returns theta (each non-reference domain against the
    reference, at the runs' mean mixture) for the states they are given. econml's own const_marginal_effect
    would give the per-feature effects instead: with sqrt features or training-set terms those are K or more
    coefficients of sqrt(w) and of the terms, which are not returns and do not match the domain names."""
    _d_y = ()   # one outcome (econml's policy interpreter reads it)

    def __init__(self, X, theta):
        self.X, self.theta = X, theta

    def const_marginal_effect(self, X):
        X = np.asarray(X, dtype=float)
        if X.shape != self.X.shape or not np.array_equal(X, self.X):
            raise ValueError("the interpreters read the returns of the states they were given, and only those")
        return self.theta


def interpret(model, X_df: pd.DataFrame, max_depth: int = 2, min_samples_leaf: int | None = None,
              random_state: int = 0) -> Interpretation:
    """Fit both single-tree interpreters to a fitted MixtureEffectModel over the states in X_df.

    min_samples_leaf defaults to max(2, n // 10) states, so no leaf speaks for a handful of runs."""
    from econml.cate_interpreter import SingleTreeCateInterpreter, SingleTreePolicyInterpreter

    model._check_fitted()
    X = model._X(X_df)
    n = len(X)
    if n < 4:
        raise ConfigError(f"interpret: {n} states given; need at least 4 to grow a tree")
    if int(max_depth) < 1:
        raise ConfigError(f"interpret: max_depth={max_depth}; expected a positive integer")
    leaf = max(2, n // 10) if min_samples_leaf is None else int(min_samples_leaf)
    th, se = model.theta_stderr(X_df)
    returns = _Returns(X, th)
    cate = SingleTreeCateInterpreter(include_model_uncertainty=False, max_depth=int(max_depth),
                                     min_samples_leaf=leaf, random_state=random_state).interpret(returns, X)
    policy = SingleTreePolicyInterpreter(include_model_uncertainty=False, max_depth=int(max_depth),
                                         min_samples_leaf=leaf, random_state=random_state).interpret(returns, X)
    return Interpretation(cate=cate, policy=policy, covariates=list(model.covariates),
                          domains=[_short(d) for d in model.others], reference=_short(model.reference),
                          X=X, theta=th, stderr=se)


# -- the trees as tables -----------------------------------------------------------------------------

def _paths(tree, features):
    """For every leaf of a fitted (sklearn or econml) tree: the list of conditions that reach it."""
    t = tree.tree_
    out = {}

    def walk(node, conds):
        left, right = t.children_left[node], t.children_right[node]
        if left < 0:
            out[node] = conds
            return
        f, thr = features[t.feature[node]], float(t.threshold[node])
        walk(left, conds + [(f, "<=", thr)])
        walk(right, conds + [(f, ">", thr)])
    walk(0, [])
    return out


def condition_text(conds, digits: int = 3) -> str:
    if not conds:
        return "in every state"
    return " and ".join(f"{f} {'≤' if op == '<=' else '>'} {thr:.{digits}g}" for f, op, thr in conds)


def policy_leaves(it: Interpretation) -> pd.DataFrame:
    """One row per leaf of the policy tree: its conditions, states, the action it picks and why.

    The leaf's values are recomputed from theta: the mean return of each action over the leaf's states
    (0 for keeping the reference). `action` is the tree's own pick; `best`/`worst` are the domains with the
    highest and lowest (`lowest`) mean return among all K (the reference counts as 0)."""
    tree = it.policy.tree_model_
    leaf_of = tree.apply(it.X)
    picks = tree.predict(it.X)
    full = np.hstack([np.zeros((len(it.X), 1)), it.theta])             # column 0: the reference
    names = [it.reference] + it.domains
    rows = []
    for node, conds in _paths(tree, it.covariates).items():
        mask = leaf_of == node
        if not mask.any():
            continue
        mean = full[mask].mean(axis=0)
        action = int(np.bincount(picks[mask].astype(int)).argmax())
        order = np.argsort(mean)[::-1]
        rows.append({"leaf": int(node), "where": condition_text(conds), "states": int(mask.sum()),
                     "action": it.actions[action], "to": names[action], "theta_to": float(mean[action]),
                     "runner_up": names[order[1]] if order[0] == action else names[order[0]],
                     "theta_runner_up": float(mean[order[1]] if order[0] == action else mean[order[0]]),
                     "lowest": names[int(order[-1])], "theta_lowest": float(mean[order[-1]]),
                     "conds": conds, **{f"theta_{d}": float(m) for d, m in zip(names, mean)}})
    return pd.DataFrame(rows).sort_values("states", ascending=False).reset_index(drop=True)


def cate_leaves(it: Interpretation) -> pd.DataFrame:
    """One row per leaf of the CATE tree: conditions, states and each domain's mean theta there."""
    tree = it.cate.tree_model_
    leaf_of = tree.apply(it.X)
    rows = []
    for node, conds in _paths(tree, it.covariates).items():
        mask = leaf_of == node
        if not mask.any():
            continue
        rows.append({"leaf": int(node), "where": condition_text(conds), "states": int(mask.sum()),
                     **{d: float(it.theta[mask, j].mean()) for j, d in enumerate(it.domains)}})
    return pd.DataFrame(rows)


def marginal_returns(it: Interpretation) -> pd.DataFrame:
    """Long table for plotting: one row per (state, domain, covariate) with theta and the covariate's value."""
    n, k = it.theta.shape
    frames = []
    for j, c in enumerate(it.covariates):
        frames.append(pd.DataFrame({"state": np.repeat(np.arange(n), k), "domain": np.tile(it.domains, n),
                                    "theta": it.theta.ravel(), "stderr": it.stderr.ravel(),
                                    "covariate": c, "value": np.repeat(it.X[:, j], k)}))
    return pd.concat(frames, ignore_index=True)


def return_correlations(it: Interpretation) -> pd.DataFrame:
    """Spearman correlation of each domain's theta(x) with each covariate over the states (domain x covariate)."""
    out = pd.DataFrame(index=it.domains, columns=it.covariates, dtype=float)
    for j, d in enumerate(it.domains):
        for c, x in zip(it.covariates, it.X.T):
            ok = np.ptp(x) > 0 and np.ptp(it.theta[:, j]) > 0
            out.loc[d, c] = spearmanr(x, it.theta[:, j]).statistic if ok else 0.0
    return out


# -- the strategy in words ---------------------------------------------------------------------------

MEANING = {("ws", "<="): "looks noisier", ("ws", ">"): "looks cleaner",
           ("nl", "<="): "is easier for the base model", ("nl", ">"): "is harder for the base model",
           ("hes", "<="): "is more predictable", ("hes", ">"): "is less predictable"}


def _phrase(f: str, op: str, thr: float, digits: int) -> str:
    """'news looks noisier (ws_news ≤ 0.81)' for the covariates whose meaning is known (ws, nl, hes)."""
    kind, _, dom = f.partition("_")
    who = dom
    if kind == "pool":
        kind, who = dom, "the pool"
    meaning = MEANING.get((kind, op))
    base = f"{f} {'≤' if op == '<=' else '>'} {thr:.{digits}g}"
    return f"{who} {meaning} ({base})" if meaning and who else base


def strategy_text(it: Interpretation, digits: int = 3, min_rho: float = 0.3) -> list[str]:
    """Sentences that read the learned strategy, each computed from the trees or from theta.

    1. One sentence per policy-tree leaf: where (the path's conditions, with the share of states), the model
       moves share from the domain with the lowest mean return to the one the tree picks, with both returns.
    2. The CATE tree's first split: the domain whose mean return differs most across it, on each side.
    3. For each domain, the covariate its return moves with most (Spearman), if |rho| >= min_rho.
    4. How much of it the model's own uncertainty supports: the share of (state, domain) 95% CIs excluding 0.
    """
    n = len(it.X)
    out = []
    for r in policy_leaves(it).itertuples():
        where = " and ".join(_phrase(f, op, thr, digits) for f, op, thr in r.conds) or "in every state"
        head = f"Where {where} ({r.states} of {n} states)" if r.conds else f"In every state ({n})"
        if r.to == it.reference:
            out.append(f"{head}, the model keeps share on {it.reference} (the reference): no domain's mean "
                       f"return is positive there (best: {r.runner_up} {r.theta_runner_up:+.{digits}g}).")
        else:
            src = r.lowest
            tail = f"; next best {r.runner_up} ({r.theta_runner_up:+.{digits}g})"
            if src == it.reference:
                out.append(f"{head}, the model moves share from {it.reference} (the reference, 0) to {r.to} "
                           f"(return {r.theta_to:+.{digits}g} per unit share{tail}).")
            else:
                out.append(f"{head}, the model moves share from {src} (return {r.theta_lowest:+.{digits}g} per unit "
                           f"share relative to {it.reference}) to {r.to} ({r.theta_to:+.{digits}g}{tail}).")
    tree = it.cate.tree_model_
    t = tree.tree_
    if t.children_left[0] >= 0:
        f, thr = it.covariates[t.feature[0]], float(t.threshold[0])
        left = it.X[:, t.feature[0]] <= thr
        diff = it.theta[left].mean(axis=0) - it.theta[~left].mean(axis=0)
        j = int(np.argmax(np.abs(diff)))
        out.append(f"The returns differ most across {f} = {thr:.{digits}g} (the CATE tree's first split): "
                   f"{it.domains[j]}'s return is {it.theta[left, j].mean():+.{digits}g} where {f} ≤ {thr:.{digits}g} "
                   f"({int(left.sum())} states) and {it.theta[~left, j].mean():+.{digits}g} above "
                   f"({int((~left).sum())} states).")
    else:
        out.append("The CATE tree did not split: the returns do not vary enough across these states.")
    rho = return_correlations(it)
    moves = []
    for d in it.domains:
        c = rho.loc[d].abs().idxmax()
        if abs(rho.loc[d, c]) >= min_rho:
            moves.append(f"{d}'s return {'rises' if rho.loc[d, c] > 0 else 'falls'} with {c} "
                         f"(Spearman {rho.loc[d, c]:+.2f})")
    if moves:
        out.append("Over the states: " + "; ".join(moves) + ".")
    else:
        out.append(f"No domain's return moves with any covariate at |Spearman| >= {min_rho}.")
    sig = float(((np.abs(it.theta) > 1.96 * it.stderr) & (it.stderr > 0)).mean())
    if sig < 0.25:
        out.append(f"Caution: only {sig:.0%} of the (state, domain) returns have a 95% CI that excludes 0, so this "
                   "strategy is what the point estimates say, not a finding the model is sure of.")
    else:
        out.append(f"{sig:.0%} of the (state, domain) returns have a 95% CI that excludes 0.")
    return out


# -- drawing (matplotlib is imported only here) ------------------------------------------------------

def draw_trees(it: Interpretation, fontsize: int = 7):
    """The CATE tree and the policy tree side by side (econml's own matplotlib renderers)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(18, 6.5), gridspec_kw={"width_ratios": [1.2, 1]})
    it.cate.plot(ax=axes[0], feature_names=it.covariates, treatment_names=it.domains, fontsize=fontsize,
                 precision=3)
    axes[0].set_title(f"SingleTreeCateInterpreter: theta(x) per domain (vs {it.reference})")
    it.policy.plot(ax=axes[1], feature_names=it.covariates, treatment_names=it.actions, fontsize=fontsize,
                   precision=3)
    axes[1].set_title("SingleTreePolicyInterpreter: where to move share")
    fig.tight_layout()
    return fig
