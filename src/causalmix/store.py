"""The run store: one small CSV file per finished run, under a folder named by the config hash.

Why CSV files, one per run: a run is written atomically (temp file + rename), so a killed sweep
never leaves half a record and a rerun skips exactly the finished runs; parallel workers (Hydra's
joblib or SLURM launchers) never contend for one file; and the files open in any tool. `export`
writes the two CSVs that RegMix and Olmix read (mixture columns; metric columns; same `index`)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


class RunStore:
    def __init__(self, root: Path, config_hash: str):
        self.dir = Path(root) / "runs" / config_hash
        self.hash = config_hash

    def file(self, run_id: int) -> Path:
        return self.dir / f"run_{run_id:05d}.csv"

    def done(self, run_id: int) -> bool:
        return self.file(run_id).exists()

    def write(self, run_id: int, record: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file(run_id).with_suffix(f".tmp{os.getpid()}")
        pd.DataFrame([record]).to_csv(tmp, index=False)
        tmp.replace(self.file(run_id))

    def load(self) -> pd.DataFrame:
        files = sorted(self.dir.glob("run_*.csv"))
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_csv(f) for f in files], ignore_index=True).sort_values("run_id",
                                                                                       ignore_index=True)

    def export(self, out_dir: Path, domains: list[str]) -> tuple[Path, Path]:
        """mixtures.csv (index + one weight column per domain) and metrics.csv (index + metrics)."""
        df = self.load()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        mix = df[["run_id"] + [f"w_{d}" for d in domains]].rename(
            columns={"run_id": "index", **{f"w_{d}": d for d in domains}})
        metric_cols = [c for c in df.columns if c.startswith(("acc_", "margin_"))] + ["avg_dev", "avg_margin"]
        met = df[["run_id"] + metric_cols].rename(columns={"run_id": "index"})
        a, b = out_dir / "mixtures.csv", out_dir / "metrics.csv"
        mix.to_csv(a, index=False)
        met.to_csv(b, index=False)
        return a, b
