"""Pack what the lent GPU machine lacks into the git-ignored .devcarry/ (see scripts/gpu_paper_check.sh):
the parsed samples that the `paper` config keys, as samples.tgz. With --relink, on that machine: copy each
stdlib-kind domain's samples to the key its own Python computes (the key names the Python version, whose
stdlib would otherwise be parsed as different code samples)."""
import shutil
import sys
import tarfile
from pathlib import Path

from omegaconf import OmegaConf

from causalmix.config import compose, path
from causalmix.data import domains as dom

cfg = compose(["scale=paper"])
cache = path(cfg, "cache")
specs = OmegaConf.to_container(cfg.data.domains)
if "--relink" in sys.argv:
    for name, spec in specs.items():
        if spec["kind"] == "stdlib":
            dst = cache / "samples" / f"{name}-{dom._cache_key(name, spec, cfg.data.sample_chars, cfg.seed)}.jsonl"
            src = Path(".devcarry") / f"{name}.jsonl"
            if not dst.exists():
                shutil.copy(src, dst)
                print(f"{name}: the shipped samples under this Python's key {dst.name}")
    sys.exit()
files = {f"{n}-{dom._cache_key(n, s, cfg.data.sample_chars, cfg.seed)}.jsonl": n for n, s in specs.items()}
files[f"{cfg.pretrain.corpus}-{dom._cache_key(cfg.pretrain.corpus, {'kind': cfg.pretrain.corpus}, cfg.data.sample_chars, cfg.seed)}.jsonl"] = cfg.pretrain.corpus
out = Path(".devcarry")
out.mkdir(exist_ok=True)
with tarfile.open(out / "samples.tgz", "w:gz") as tar:
    for f, name in files.items():
        p = cache / "samples" / f
        if not p.exists():
            sys.exit(f"gpu_bundle: error: {p} is missing; run `make setup` and `causalmix sweep --dry-run scale=paper` first")
        tar.add(p, arcname=f"samples/{f}")
        if specs.get(name, {}).get("kind") == "stdlib":
            shutil.copy(p, out / f"{name}.jsonl")
print(f"packed {len(files)} sample files into {out / 'samples.tgz'} ({(out / 'samples.tgz').stat().st_size / 1e6:.1f} MB)")
