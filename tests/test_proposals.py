"""Proposed mixtures are kept like runs: reused under the same config, inputs and code, read back exactly."""
import numpy as np
import pandas as pd

from causalmix.config import compose
from causalmix.experiments import proposals


def _runs(n=12, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(3), size=n)
    return pd.DataFrame({"run_id": np.arange(n), "w_a": w[:, 0], "w_b": w[:, 1], "w_c": w[:, 2],
                         "nl_a": rng.normal(2, 0.1, n), "avg_dev": rng.normal(40, 2, n)})


def test_a_proposal_is_fitted_once_and_read_back_exactly(tmp_path):
    cfg = compose([f"paths.out={tmp_path}"])
    runs, covs, nat = _runs(), {"nl_a": 1 / 3, "ws_b": 2.4e-5}, {"a": 0.5, "b": 0.3, "c": 0.2}
    calls = []

    def fit(names):
        calls.append(list(names))
        return {n: ({"causalmix_a": {"a": 0.1 + 1 / 3, "b": 0.2, "c": 0.7 - 1 / 3}, "equal": {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}},
                    {"causalmix_a": 0.123456789}) for n in names}

    digests = {"drawn": proposals.inputs_digest(runs, covs, nat), "noisy": proposals.inputs_digest(runs, {**covs, "nl_a": 0.3}, nat)}
    first = proposals.kept(cfg, "main", digests, fit, log=lambda *a: None)
    assert calls == [["drawn", "noisy"]]
    assert first["drawn"] == fit(["drawn"])["drawn"] and list(first["drawn"][0]) == ["causalmix_a", "equal"]
    calls.clear()
    assert proposals.kept(cfg, "main", digests, fit, log=lambda *a: None) == first and calls == []   # reused
    # another machine's fit would differ, but the same inputs read the same record back
    assert proposals.kept(cfg, "main", digests, lambda n: 1 / 0, log=lambda *a: None) == first
    # inputs that differ in the last bit are other inputs: fitted anew, the first record kept
    moved = runs.assign(avg_dev=runs.avg_dev * (1 + 1e-15))
    assert not moved.equals(runs)
    assert proposals.inputs_digest(moved, covs, nat) != digests["drawn"]
    proposals.kept(cfg, "main", {"drawn": proposals.inputs_digest(moved, covs, nat)}, fit, log=lambda *a: None)
    assert calls == [["drawn"]] and len(list(proposals.store(cfg, "main").dir.glob("run_*.csv"))) == 3
    # the run order does not matter; the config that decides a proposal does, and the ablations have their own
    assert proposals.inputs_digest(runs.iloc[::-1], covs, nat) == digests["drawn"]
    assert proposals.store(compose([f"paths.out={tmp_path}", "policy.radius=0.2"])).dir != proposals.store(cfg).dir
    scaled = compose([f"paths.out={tmp_path}", "policy.analytic_step=scaled"])
    assert proposals.store(scaled).dir != proposals.store(cfg).dir
    assert proposals.store(compose([f"paths.out={tmp_path}", "target.seeds=9"])).dir == proposals.store(cfg).dir
    assert proposals.store(cfg, "ablations").dir.parent.parent.name == "ablations"
    seeds = compose([f"paths.out={tmp_path}", "ablations.variants.no_covariates.seeds=9"])
    assert proposals.store(seeds, "ablations").dir == proposals.store(cfg, "ablations").dir   # seed count: not a fit
