"""Seaborn figures of notebook 05 (reading the fit, ranking held-out runs, what orthogonalisation buys)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def returns_vs_covariates(long: pd.DataFrame, ncol: int = 6):
    """Each domain's marginal return theta_d(x) against each covariate: one panel per covariate, one colour
    per domain, points for the states and a least-squares line per domain. `long` has columns
    state, domain, theta, covariate, value (causal.interpret.marginal_returns)."""
    covs = list(dict.fromkeys(long.covariate))
    g = sns.lmplot(data=long, x="value", y="theta", hue="domain", col="covariate", col_order=covs,
                   col_wrap=min(ncol, len(covs)), height=2.1, aspect=1.05, sharex=False, sharey=True, ci=None,
                   scatter_kws={"s": 6, "alpha": 0.45}, line_kws={"lw": 1.3}, facet_kws={"legend_out": True})
    g.set_titles("{col_name}")
    g.set_axis_labels("", "theta (per unit share)")
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.6)
        ax.tick_params(labelsize=7)
    return g.figure


def correlation_heatmap(rho: pd.DataFrame):
    """Spearman correlation of each domain's theta(x) with each covariate over the states."""
    fig, ax = plt.subplots(figsize=(min(1.0 + 0.55 * rho.shape[1], 14), 0.5 + 0.42 * rho.shape[0]))
    sns.heatmap(rho.astype(float), vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", annot_kws={"size": 7},
                cbar_kws={"label": "Spearman"}, ax=ax)
    ax.set(xlabel="covariate", ylabel="domain (return vs reference)")
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def ranking_intervals(scores: pd.DataFrame):
    """Out-of-fold Spearman and Regret@1 per method, with their bootstrap 95% CIs."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.8 + 0.45 * len(scores)), sharey=True)
    y = np.arange(len(scores))
    for ax, s, title in ((axes[0], "spearman", "out-of-fold Spearman (higher is better)"),
                         (axes[1], "regret_at_1", "Regret@1 (lower is better)")):
        ax.errorbar(scores[s], y, xerr=[scores[s] - scores[f"{s}_lo"], scores[f"{s}_hi"] - scores[s]],
                    fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.7)
        ax.set(title=title)
    axes[0].set_yticks(y, scores.method)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def observational_errors(results: pd.DataFrame, labels: dict):
    """Mean |ATE error| and CATE RMSE against the known truth, per method and design, with 95% CIs over reps."""
    df = results.assign(method=results.method.map(labels))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, col, title in ((axes[0], "ate_abs_err", "mean |ATE error| over domains"),
                           (axes[1], "cate_rmse", "CATE RMSE over (state, domain)")):
        sns.pointplot(data=df, x=col, y="method", hue="design", errorbar=("ci", 95), dodge=0.4, linestyle="none",
                      capsize=0.15, ax=ax)
        ax.set(title=title, xlabel="error against the known theta", ylabel="")
        ax.set_xlim(left=0)
    axes[1].set_yticklabels([])
    if axes[1].get_legend():
        axes[1].get_legend().remove()
    fig.tight_layout()
    return fig


def bias_by_domain(bias: pd.DataFrame):
    """Signed ATE error per domain (mean over reps, 95% CI), per method; one panel per design."""
    designs = list(dict.fromkeys(bias.design))
    methods = list(dict.fromkeys(bias.method))
    domains = list(dict.fromkeys(bias.domain))
    fig, axes = plt.subplots(1, len(designs), figsize=(5.5 * len(designs), 3.4), sharey=True, squeeze=False)
    width = 0.8 / len(methods)
    for ax, d in zip(axes.flat, designs):
        sub = bias[bias.design == d]
        for i, m in enumerate(methods):
            s = sub[sub.method == m].set_index("domain").reindex(domains)
            x = np.arange(len(domains)) + (i - (len(methods) - 1) / 2) * width
            ax.errorbar(x, s.bias, yerr=[s.bias - s.ci_lo, s.ci_hi - s.bias], fmt="o", ms=4, capsize=2, label=m)
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xticks(np.arange(len(domains)), domains, rotation=30)
        ax.set(title=f"{d} design", ylabel="estimated - true ATE")
    axes.flat[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
