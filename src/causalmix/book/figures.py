"""Seaborn figures. Every figure carries a footer naming the config that made it."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def stamp(fig, cfg, overrides=(), extra: str = "") -> None:
    """Footer: scale, overrides and any hash, so a figure can always be traced to its config."""
    text = f"config: scale={cfg.scale.name}  overrides={list(overrides) or 'none'}  seed={cfg.seed}"
    fig.text(0.01, -0.02, text + (f"  {extra}" if extra else ""), fontsize=7, color="0.4", ha="left",
             va="top")


def validity_heatmap(corr: pd.DataFrame, ax=None):
    ax = ax or plt.subplots(figsize=(6.5, 3.8))[1]
    sns.heatmap(corr, annot=True, fmt=".2f", cmap="vlag", center=0, vmin=-1, vmax=1, ax=ax)
    ax.set(xlabel="measured covariate", ylabel="latent knob",
           title="Spearman correlation, within domain, over random pools")
    return ax.figure


def validity_scatter(df: pd.DataFrame, pairs: list[tuple[str, str]]):
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.6 * len(pairs), 3.3))
    for ax, (knob, cov) in zip(np.atleast_1d(axes), pairs):
        sns.scatterplot(data=df, x=f"knob_{knob}", y=cov, hue="domain", s=18, ax=ax, legend=ax is axes[-1])
        ax.set(xlabel=f"latent {knob}", ylabel=f"measured {cov}")
    if len(pairs):
        np.atleast_1d(axes)[-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig


def knob_bars(effects: pd.DataFrame, value: str = "d_margin"):
    g = sns.catplot(data=effects, x="domain", y=value, col="knob", kind="bar", height=2.8, aspect=1.1,
                    color="steelblue", col_wrap=min(5, effects.knob.nunique()))
    for ax, (_, sub) in zip(g.axes.flat, effects.groupby("knob", sort=False)):
        ax.axhline(0, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=60)
        if f"{value}_lo" in sub:
            ax.errorbar(np.arange(len(sub)), sub[value], yerr=[sub[value] - sub[f"{value}_lo"],
                        sub[f"{value}_hi"] - sub[value]], fmt="none", color="k", lw=1)
    g.set_axis_labels("", "high - low (paired)")
    return g.figure


def outcome_hist(runs: pd.DataFrame, col: str = "avg_dev"):
    ax = plt.subplots(figsize=(5, 3))[1]
    sns.histplot(runs[col], bins=20, ax=ax)
    ax.set(xlabel=col, ylabel="proxy runs", title=f"Outcome over {len(runs)} proxy runs")
    return ax.figure


def outcome_vs(runs: pd.DataFrame, cols: list[str], y: str = "avg_dev", ncol: int = 4):
    n = len(cols)
    fig, axes = plt.subplots(int(np.ceil(n / ncol)), ncol, figsize=(3.2 * ncol, 2.8 * np.ceil(n / ncol)),
                             squeeze=False)
    for ax, c in zip(axes.flat, cols):
        sns.regplot(data=runs, x=c, y=y, ax=ax, scatter_kws={"s": 10}, line_kws={"color": "crimson"})
        ax.set_title(f"rho={runs[[c, y]].corr(method='spearman').iloc[0, 1]:.2f}", fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def theta_vs_state(eff: pd.DataFrame, x: str, domains: list[str]):
    """theta_d(x) with its CI against a covariate, one panel per domain: the heterogeneity."""
    n = len(domains)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), sharey=True, squeeze=False)
    for ax, d in zip(axes.flat, domains):
        sub = eff[eff.domain == d].sort_values(x if x in eff else f"{x}_{d}")
        xs = sub[x] if x in sub else sub[f"{x}_{d}"]
        ax.fill_between(xs, sub.ci_lo, sub.ci_hi, alpha=0.25)
        ax.plot(xs, sub.theta, ".", ms=4)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(title=d, xlabel=x if x in sub else f"{x}_{d}")
    axes.flat[0].set_ylabel("theta (return of share)")
    fig.tight_layout()
    return fig


def predicted_vs_actual(df: pd.DataFrame, y: str = "actual", yhat: str = "predicted"):
    ax = plt.subplots(figsize=(4, 4))[1]
    sns.scatterplot(data=df, x=yhat, y=y, hue="model" if "model" in df else None, s=18, ax=ax)
    lo, hi = df[[y, yhat]].min().min(), df[[y, yhat]].max().max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(title="held-out proxy runs")
    return ax.figure


def method_points(df: pd.DataFrame, y: str = "avg_dev", order=None):
    ax = plt.subplots(figsize=(6, 3.4))[1]
    sns.pointplot(data=df, x="method", y=y, order=order, errorbar=("ci", 95), capsize=0.15, linestyle="none",
                  ax=ax)
    sns.stripplot(data=df, x="method", y=y, order=order, color="0.5", size=3, ax=ax)
    ax.set(xlabel="", ylabel=y, title="Target runs: mean and 95% CI over seeds")
    return ax.figure


def mixture_bars(mixtures: dict[str, dict]):
    df = pd.DataFrame(mixtures).T.reset_index(names="method").melt(id_vars="method", var_name="domain",
                                                                   value_name="share")
    ax = plt.subplots(figsize=(7, 3.2))[1]
    sns.barplot(data=df, x="domain", y="share", hue="method", ax=ax)
    ax.legend(fontsize=7)
    ax.set(title="Each method's mixture for the target pool")
    return ax.figure


def noise_floor(floor: pd.DataFrame, runs: pd.DataFrame | None = None, outcomes=("avg_dev", "avg_margin")):
    """Each fixed (pool, mixture) pair's outcome over training seeds, beside the sweep's whole spread."""
    fig, axes = plt.subplots(1, len(outcomes), figsize=(4.2 * len(outcomes), 3.2))
    for ax, y in zip(np.atleast_1d(axes), outcomes):
        df = floor.assign(where=[f"pair {p}" for p in floor.pair])
        if runs is not None:
            df = pd.concat([df, runs.assign(where="sweep (all runs)")], ignore_index=True)
        sns.stripplot(data=df, x="where", y=y, ax=ax, size=4, jitter=0.15, color="steelblue")
        ax.set(xlabel="", title=f"{y}: seed noise vs the sweep's spread")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def retest(runs: pd.DataFrame, again: pd.DataFrame, summary: pd.DataFrame):
    """Each retrained sweep run's outcome against its first training, with the identity line (power.retest)."""
    outcomes = list(summary.index)
    fig, axes = plt.subplots(1, len(outcomes), figsize=(4.2 * len(outcomes), 3.6))
    first = runs.set_index("run_id").loc[again.run_id]
    for ax, y in zip(np.atleast_1d(axes), outcomes):
        a, b = first[y].to_numpy(float), again[y].to_numpy(float)
        ax.scatter(a, b, s=14, color="steelblue")
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        r = summary.loc[y]
        ax.set(xlabel=f"{y}, sweep run", ylabel=f"{y}, trained again",
               title=f"{y}: Spearman {r.Spearman:.2f}, ceiling {r['ceiling rho']:.2f}")
    fig.tight_layout()
    return fig


def pool_retest(runs: pd.DataFrame, again: pd.DataFrame, fresh: pd.DataFrame, summary: pd.DataFrame):
    """Each retrained sweep run's outcome against its first training: on the same pool (power.retest) and on a
    pool drawn afresh at the same state (power.pool_retest), with the identity line."""
    outcomes = list(summary.index)
    fig, axes = plt.subplots(1, len(outcomes), figsize=(4.2 * len(outcomes), 3.6))
    first = runs.set_index("run_id")
    for ax, y in zip(np.atleast_1d(axes), outcomes):
        r = summary.loc[y]
        for df, label, color in ((again, f"same pool (Spearman {r['Spearman, same pool']:.2f})", "0.6"),
                                 (fresh, f"fresh pool (Spearman {r['Spearman, fresh pool']:.2f})", "darkorange")):
            ax.scatter(first.loc[df.run_id, y].to_numpy(float), df[y].to_numpy(float), s=14, color=color, label=label)
        vals = np.r_[first.loc[fresh.run_id, y].to_numpy(float), fresh[y].to_numpy(float), again[y].to_numpy(float)]
        ax.plot([vals.min(), vals.max()], [vals.min(), vals.max()], color="grey", lw=1, ls="--")
        ax.set(xlabel=f"{y}, sweep run", ylabel=f"{y}, trained again",
               title=f"{y}: ceiling, state known, {r['ceiling, state known']:.2f}")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def mixtures_by_state(mixtures: pd.DataFrame):
    """Long table (state, method, domain, share): one panel per target state."""
    g = sns.catplot(data=mixtures, x="domain", y="share", hue="method", col="state", kind="bar", height=3,
                    aspect=1.3, col_wrap=min(2, mixtures.state.nunique()))
    g.set_titles("{col_name}")
    for ax in g.axes.flat:
        ax.tick_params(axis="x", rotation=45)
    return g.figure


def paired_diffs(table: pd.DataFrame, baseline: str = "Equal"):
    """Per state (and pooled): each method's paired difference to a baseline with its 95% CI."""
    c = f"vs {baseline}"
    df = table.dropna(subset=[c])
    states = list(dict.fromkeys(df.state))
    ax = plt.subplots(figsize=(7, 0.5 + 0.9 * len(states)))[1]
    methods = list(dict.fromkeys(df.method))
    for i, s in enumerate(states):
        for j, m in enumerate(methods):
            sel = df[(df.state == s) & (df.method == m)]
            if len(sel):
                r, y = sel.iloc[0], i + (j - (len(methods) - 1) / 2) * 0.15
                ax.errorbar([r[c]], [y], xerr=[[r[c] - r[f"{c} lo"]], [r[f"{c} hi"] - r[c]]], fmt="o",
                            color=sns.color_palette()[j % 10], label=m if i == 0 else None, capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(states)), states)
    ax.invert_yaxis()
    ax.set(xlabel=f"AvgDev minus {baseline}, paired (95% CI)", title=f"Paired differences to {baseline}")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return ax.figure


def count_curve(curve: pd.DataFrame):
    """The chosen mixture's quality against the number of proxy runs it was fitted on: paired difference to the
    full sweep's mixture (pooled over states), and regret on the oracle state, each with its 95% CI."""
    has_regret = "regret" in curve and curve["regret"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_regret else 1, figsize=(9 if has_regret else 4.5, 3.2), squeeze=False)
    panels = [("vs all runs", "lo", "hi", "AvgDev minus the full sweep's, paired")]
    if has_regret:
        panels.append(("regret", "regret lo", "regret hi", f"regret on {curve.attrs.get('oracle', 'the oracle state')}"))
    for ax, (y, lo, hi, title) in zip(axes[0], panels):
        err = np.array([curve[y] - curve[lo], curve[hi] - curve[y]]).clip(min=0)
        ax.errorbar(curve["runs"], curve[y], yerr=np.nan_to_num(err), fmt="o-", capsize=3)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xscale="log", xlabel="proxy runs the model was fitted on", ylabel="AvgDev points", title=title)
        ax.set_xticks(list(curve["runs"]), [str(int(r)) for r in curve["runs"]])
    fig.tight_layout()
    return fig


def share_accuracy(runs: pd.DataFrame, domains: list[str]):
    """One panel per domain: each proxy run's accuracy on the domain's benchmark against its share."""
    fig, axes = plt.subplots(1, len(domains), figsize=(2.6 * len(domains), 2.8), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), domains):
        sns.regplot(x=runs[f"w_{d}"], y=runs[f"acc_{d}"], ax=ax, scatter_kws={"s": 10, "alpha": 0.6}, lowess=True,
                    line_kws={"color": "k", "lw": 1})
        ax.set(title=d, xlabel=f"share of {d}", ylabel="final answer right (%)" if ax is axes[0] else "")
    fig.tight_layout()
    return fig


def runs_curve(curve: pd.DataFrame, goal: float | None = 0.85, ceiling: float | None = None, extended=None):
    """Held-out Spearman against the number of proxy runs: each check a dot (per model), the mean a line; the
    goal and the noise ceiling as dashed lines. `extended`: (seed, runs from) of a draw whose sweep reaches
    further than the others; its own means are drawn dotted from that size on (the solid line mixes draws)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    rng = np.random.default_rng(0)
    for k, (m, color) in enumerate(zip(("CausalMix", "RegMix"), sns.color_palette()[:2])):
        jitter = 2.0 ** ((k - 0.5) * 0.1 + rng.uniform(-0.03, 0.03, len(curve)))
        ax.scatter(curve.runs * jitter, curve[m], s=12, alpha=0.45, color=color, lw=0)
        if extended is None:
            mean = curve.groupby("runs")[m].mean()
            ax.plot(mean.index, mean.to_numpy(), "o-", color=color, label=f"{m} (mean)")
            continue
        seed, start = extended
        mean = curve[curve.runs <= start].groupby("runs")[m].mean()
        ax.plot(mean.index, mean.to_numpy(), "o-", color=color, label=f"{m} (mean over draws)")
        own = curve[(curve.seed == seed) & (curve.runs >= start)].groupby("runs")[m].mean()
        ax.plot(own.index, own.to_numpy(), "o:", color=color, label=f"{m} (seed {seed}, extended)")
    for y, label in ((goal, "goal"), (ceiling, "noise ceiling")):
        if y is not None and np.isfinite(y):
            ax.axhline(y, ls="--", lw=1, color="0.3")
            ax.text(curve.runs.min(), y, f" {label} {y:.2f}", va="bottom", fontsize=8, color="0.3")
    ticks = sorted(curve.runs.unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(int(r)) for r in ticks])
    ax.minorticks_off()
    ax.set(xlabel="proxy runs (5-fold held-out check)", ylabel="held-out Spearman")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
