"""The landing page's "Results at a glance": a Markdown fragment rendered from the run's results.json.

`causalmix reproduce` writes it to book/generated/glance.txt (git-ignored) after the notebooks ran and before
the book is built; book/intro.md includes it. Every sentence is computed from the numbers: a method whose
paired confidence interval against Equal includes zero is said not to beat Equal. The paper's numbers
(book/paper_numbers.yaml) stand beside ours, marked as the paper's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

ORDER = ["Equal", "Natural", "RegMix", "DMO", "Grid", "CausalMix-A", "CausalMix-S"]
FRAGMENT = "generated/glance.txt"   # not a page of its own (.md would be): book/intro.md includes it


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _triple(v) -> tuple[float, float, float]:
    v = list(v or []) + [None] * 3
    return _num(v[0]), _num(v[1]), _num(v[2])


def _ci(v, signed: bool = True) -> str:
    m, lo, hi = _triple(v)
    if not math.isfinite(m):
        return "n/a"
    f = "+.2f" if signed else ".2f"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{m:{f}}"
    return f"{m:{f}} [{lo:{f}}, {hi:{f}}]"


def _methods(results: dict) -> list[str]:
    seen = list(results.get("pooled_avg_dev") or {}) + list(results.get("pooled_vs_equal") or {})
    return [m for m in ORDER if m in seen] + sorted({m for m in seen if m not in ORDER})


def paper_cell(method: str, paper: dict | None) -> str:
    """The paper's number for `method`: its gain over Equal per setting where both are reported."""
    if not paper:
        return ""
    cells = []
    for s in paper.get("settings", []):
        scores = s.get("scores", {})
        short = s.get("short") or s["name"].split(",")[-1].strip()
        if method == "Equal" and "Equal" in scores:
            cells.append(f"{scores['Equal']:.2f} ({short})")
        elif method in scores and "Equal" in scores:
            cells.append(f"{scores[method] - scores['Equal']:+.2f} ({short}: {scores[method]:.2f} vs "
                         f"{scores['Equal']:.2f})")
    return "; ".join(cells) or "not reported"


def judge(diff, baseline: str = "Equal") -> str:
    """The predicate of a plain sentence about a paired (mean, lo, hi) difference to a baseline."""
    d, lo, hi = _triple(diff)
    if not math.isfinite(d):
        return f"has no paired comparison with {baseline} in this run."
    ci = f"95% CI {lo:+.2f} to {hi:+.2f}" if math.isfinite(lo) and math.isfinite(hi) else "no CI"
    if math.isfinite(lo) and lo > 0:
        return f"beats {baseline}, by {d:+.2f} AvgDev points ({ci})."
    if math.isfinite(hi) and hi < 0:
        return f"is worse than {baseline}, by {d:+.2f} AvgDev points ({ci})."
    return f"does not beat {baseline}: the paired difference is {d:+.2f} AvgDev points and its {ci} includes zero."


def verdict(method: str, diff, baseline: str = "Equal") -> str:
    return f"**{method}** {judge(diff, baseline)}"


def _paired_p(d: float, lo: float, hi: float, n: int) -> float:
    """The two-sided p-value of a paired t-test, read back from its mean and 95% t interval over n pairs."""
    if n < 2 or not all(map(math.isfinite, (d, lo, hi))) or hi <= lo:
        return float("nan")
    from scipy import stats
    se = (hi - lo) / (2 * stats.t.ppf(0.975, n - 1))
    return float(2 * stats.t.sf(abs(d) / se, n - 1))


def render(results: dict | None, paper: dict | None = None, source: str = "outputs/<scale>/results.json",
           link: str | None = None) -> str:
    """The fragment's Markdown. `results` is results.json's content (None or {} when there is none)."""
    if not results or not (results.get("pooled_avg_dev") or results.get("pooled_vs_equal")):
        return (f"No results to show yet: `{source}` is absent or holds no main results; "
                f"run `make book` (or `causalmix reproduce`) to compute them.\n")
    out = []
    states = results.get("target_states") or []
    stamp = [f"scale `{results.get('scale', '?')}`", f"seed {results.get('seed', '?')}",
             f"run of {results.get('updated', 'unknown date')}", f"commit `{results.get('commit') or 'unknown'}`"]
    if results.get("proxy_runs"):
        stamp.append(f"{results['proxy_runs']} proxy runs")
    out.append("**This run:** " + ", ".join(stamp) + ".")
    if results.get("scale") == "smoke":
        out.append("")
        out.append("*At the `smoke` scale every stage runs in minutes and the numbers mean nothing; the "
                   "`cpu` scale is the one to read.*")
    pairs = results.get("pooled_pairs")
    seeds = results.get("target_seeds")
    where = f"pooled over {len(states)} target states ({', '.join(states)})" if states else "pooled"
    if seeds:
        where += f" x {seeds} paired seeds"
    out += ["", f"AvgDev (accuracy x 100) of the target model, {where}: mean [95% CI], and each method's paired "
                "difference to Equal on the same (state, seed). The last column is **the paper's** number "
                f"(arXiv {(paper or {}).get('arxiv', '2607.01104')}), for orientation only: other models, data "
                "and benchmarks.", ""]
    out.append("| method | AvgDev [95% CI] | vs Equal, paired [95% CI] | the paper: vs Equal |")
    out.append("|---|---|---|---|")
    avg, vs = results.get("pooled_avg_dev") or {}, results.get("pooled_vs_equal") or {}
    for m in _methods(results):
        diff = "(baseline)" if m == "Equal" else _ci(vs.get(m))
        out.append(f"| {m} | {_ci(avg.get(m), signed=False)} | {diff} | {paper_cell(m, paper) or '—'} |")
    out.append("")
    others = [(results.get(f"pooled_vs_{key}") or {}, name) for key, name in
              (("regmix", "RegMix"), ("dmo", "DMO"), ("grid", "Grid"))]
    for m in _methods(results):
        if m == "Equal":
            continue
        line = verdict(m, vs.get(m))
        for table, name in others:
            if m in table and m.startswith("CausalMix"):
                line += f" Against {name}, it {judge(table[m], name)}"
        out.append(f"- {line}")
    mde = _num(results.get("mde_pooled"))
    if math.isfinite(mde):
        out.append(f"- The smallest paired difference this design detects (80% power, 5% level) is "
                   f"{mde:.2f} AvgDev points{f' ({pairs} pairs)' if pairs else ''}.")
    ho = (results.get("heldout_spearman") or {}).get("avg_dev") or {}
    if ho:
        c, r = _num(ho.get("causalmix")), _num(ho.get("regmix"))
        if math.isfinite(c) and math.isfinite(r):
            better = "CausalMix" if c > r else ("RegMix" if r > c else "neither")
            k, reps = results.get("heldout_folds"), results.get("heldout_repeats")
            how = f"{k}-fold, mean over {reps} fold assignments, " if k and reps and int(reps) > 1 else ""
            out.append(f"- Ranking held-out proxy runs ({how}Spearman, AvgDev): CausalMix {c:.2f}, RegMix {r:.2f}; "
                       f"{better} ranks them better." if better != "neither" else
                       f"- Ranking held-out proxy runs ({how}Spearman, AvgDev): both {c:.2f}.")
    cv = results.get("heldout_spearman_curve") or {}
    runs, cm = cv.get("runs") or [], cv.get("causalmix") or []
    if len(runs) >= 2 and len(cm) == len(runs):
        per, need = _num(cv.get("per_doubling")), cv.get("runs_for_goal")
        ext, tm = cv.get("extended_to"), cv.get("trend_means") or {}
        pts = sorted((int(n), _num(v)) for n, v in tm.items())
        line = "- Would more proxy runs sharpen the ranking? On random subsets of the sweeps (chapter 2) it went from "
        if ext and len(pts) >= 2:     # the draws' curve up to the sweep's size, then the extended sweep's own
            i = max(k for k, n in enumerate(runs) if n <= pts[0][0])
            line += (f"{_num(cm[0]):.2f} with {runs[0]} runs to {_num(cm[i]):.2f} with {runs[i]}; one sweep extended to "
                     f"{ext} runs went from {pts[0][1]:.2f} with {pts[0][0]} to {pts[-1][1]:.2f} with {pts[-1][0]}")
        else:
            line += f"{_num(cm[0]):.2f} with {runs[0]} runs to {_num(cm[-1]):.2f} with {runs[-1]}"
        if math.isfinite(per):
            line += f", {per:+.2f}" if abs(per) >= 0.01 or per == 0 else f", {per:+.3f}"
            line += " over the last doubling"
        if math.isfinite(per) and per <= 0.01:      # chapter 2's reading: a trend under +0.01 does not rise
            line += "; that barely rises, so more runs alone would not reach 0.85"
        elif need is not None and _num(need) > 100 * runs[-1]:
            line += "; at that rate 0.85 is more than 100 times the runs away"
        elif need is not None and math.isfinite(_num(need)):
            line += f"; at that rate 0.85 would take about {_num(need):,.0f} runs"
        out.append(line + ".")
    rt = (results.get("retest") or {}).get("avg_dev") or {}
    s, ceil = _num(rt.get("spearman")), _num(rt.get("ceiling"))
    if math.isfinite(s) and math.isfinite(ceil):
        out.append(f"- How well could the runs be ranked at all? The sweep's first {rt.get('runs', '?')} runs, trained "
                   f"again on a fresh draw of their data (chapter 2), agree with their first training at Spearman "
                   f"{s:.2f} on AvgDev; the seed noise alone would cap any model's held-out correlation at {ceil:.2f}.")
    pr = (results.get("pool_retest") or {}).get("avg_dev") or {}
    ps, pc, ci = _num(pr.get("spearman")), _num(pr.get("ceiling")), pr.get("ceiling_ci") or [None, None]
    if math.isfinite(ps) and math.isfinite(pc):
        lo, hi = (_num(x) for x in ci[:2])
        band = f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
        out.append(f"- Trained again on a pool drawn afresh at the same latent state, the sweep's first {pr.get('runs', '?')} "
                   f"runs agree with their first training at Spearman {ps:.2f} on AvgDev: the pool's own draw moves the "
                   f"outcome too, so a model that knew each pool's latent state exactly could rank held-out runs at about "
                   f"{pc:.2f}{band} at best.")
    nc = (results.get("ablations") or {}).get("no_covariates")
    if nc and len(nc) >= 3:
        d, lo, hi = (_num(x) for x in nc[:3])
        if math.isfinite(d):
            if d == 0 and not (math.isfinite(lo) and lo != hi):
                said = "it proposes the same mixtures, so here knowing the state did not change the choice"
            elif math.isfinite(hi) and hi < 0:
                said = "the model without does worse: knowing the state paid"
            elif math.isfinite(lo) and lo > 0:
                said = "the model without does better: knowing the state cost"
            else:
                said = "the difference is within noise"
            n = int(nc[3]) if len(nc) >= 4 and nc[3] is not None else 0
            pv = _paired_p(d, lo, hi, n)
            over = f" over {n} (state, seed) pairs" + (f", p = {pv:.3f}" if math.isfinite(pv) else "") if n else ""
            out.append(f"- Does knowing the pool's state pay? CausalMix-S against the same model without covariates "
                       f"(chapter 6): {d:+.2f} [{lo:+.2f}, {hi:+.2f}] AvgDev for the model without{over}; {said}.")
    hab = (results.get("analyses") or {}).get("habit_sweep") or {}
    dml, naive = hab.get("CausalMix (DML):habit - randomised"), hab.get("Forest on (T, X), no DML:habit - randomised")
    if dml and naive and len(dml) >= 3 and len(naive) >= 3:
        (d, dlo, dhi), (f, flo, fhi) = ((_num(x) for x in v[:3]) for v in (dml, naive))
        out.append(f"- What does orthogonalisation buy on real proxies? Fitted on a habit sweep (each mixture follows "
                   f"its pool, as a practitioner's would; chapter 5) instead of the randomised one, CausalMix's ranking "
                   f"of randomised runs changes by {d:+.2f} [{dlo:+.2f}, {dhi:+.2f}] (Spearman), a forest without DML's "
                   f"by {f:+.2f} [{flo:+.2f}, {fhi:+.2f}].")
    lc, lc_vs = results.get("long_cot") or {}, results.get("long_cot_vs") or {}
    for m in ("CausalMix-A", "CausalMix-S"):
        if m in lc and lc_vs.get(m):
            line = (f"- Long chain-of-thought (chapter 7: a reasoning pool, a target of another shape): {m} scores "
                    f"{_ci(lc[m], signed=False)} AvgDev.")
            for b in ("Grid", "RegMix", "Equal"):
                if b in lc_vs[m]:
                    line += f" It {judge(lc_vs[m][b], b)}"
            out.append(line)
    if paper:
        shown = [f"{s['name']}: " + ", ".join(f"{k} {v:.2f}" for k, v in s.get("scores", {}).items())
                 for s in paper.get("settings", [])]
        out += ["", f"The paper's reported AvgDev, from {paper.get('provenance', 'the paper')}: " + "; ".join(shown) + "."]
    if link:
        out += ["", f"Per-state tables, figures and the oracle's regret: {{doc}}`{link}`."]
    out.append(f"\n*Read from `{source}`.*")
    return "\n".join(out) + "\n"


def load_paper(book_dir: Path | None = None) -> dict | None:
    """book/paper_numbers.yaml (the given book dir's copy, else the repo's), or None when there is none."""
    from causalmix.config import REPO_ROOT
    f = Path(book_dir) / "paper_numbers.yaml" if book_dir is not None else None
    if f is None or not f.is_file():
        f = Path(REPO_ROOT) / "book" / "paper_numbers.yaml"
    if not f.is_file():
        return None
    from omegaconf import OmegaConf
    return OmegaConf.to_container(OmegaConf.load(f), resolve=True)


def write(run_dir: Path, book_dir: Path, source: str | None = None) -> Path:
    """Render run_dir/results.json into book_dir/generated/glance.txt; return the file."""
    f = Path(run_dir) / "results.json"
    try:
        results = json.loads(f.read_text()) if f.is_file() else None
    except json.JSONDecodeError:
        results = None
    link = "/executed/04_main_results" if (Path(book_dir) / "executed" / "04_main_results.ipynb").is_file() else None
    if source is None:
        from causalmix.book.notebook import path_roots, scrub
        source = scrub(str(f.resolve()), path_roots(run_dir))
    text = render(results, load_paper(book_dir), source, link)
    out = Path(book_dir) / FRAGMENT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
