"""Everything a run needs that does not change between runs: domains split by document, benchmarks,
reference vocabularies and the base models. Built once per config and cached on disk."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from causalmix.data import benchmarks, domains as dom
from causalmix import lineage
from causalmix.config import config_hash, path
from causalmix.data.corrupt import family
from causalmix.data.covariates import vocabulary
from causalmix.lm.model import GPT, GPTConfig
from causalmix.lm.train import fit


@dataclass
class World:
    cfg: DictConfig
    splits: dict[str, dict[str, list]]     # domain -> {"pretrain", "pool", "bench"} -> samples
    families: dict[str, str]
    benches: dict[str, list[benchmarks.Item]]
    vocabs: dict[str, frozenset]

    @property
    def domains(self) -> list[str]:
        return list(self.splits)

    def pool_samples(self) -> dict[str, list]:
        return {d: s["pool"] for d, s in self.splits.items()}


def set_threads(cfg: DictConfig) -> None:
    if cfg.device == "cpu":
        torch.set_num_threads(int(cfg.threads))


def build_world(cfg: DictConfig) -> World:
    cache = path(cfg, "cache")
    specs = OmegaConf.to_container(cfg.data.domains, resolve=True)
    loaded = dom.load_domains(specs, cache, sample_chars=cfg.data.sample_chars, seed=cfg.seed)
    splits = {d: dom.split_by_doc(s, dict(cfg.data.split), seed=cfg.seed) for d, s in loaded.items()}
    families = {d: family(specs[d]["kind"]) for d in specs}
    benches = {d: benchmarks.build(d, families[d], splits[d]["bench"], cfg.data.bench_items, seed=cfg.seed + 7)
               for d in specs}
    vocabs = {d: vocabulary(splits[d]["pretrain"]) for d in specs}
    return World(cfg, splits, families, benches, vocabs)


def gpt_config(cfg: DictConfig, size: str) -> GPTConfig:
    m = cfg.model[size]
    return GPTConfig(n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd, context=cfg.model.context,
                     dropout=m.dropout)


def base_spec(cfg: DictConfig, size: str) -> dict:
    """The config that shapes a base model of a size (nothing else: not paths, device or thread count)."""
    return {"model": OmegaConf.to_container(cfg.model[size]), "context": cfg.model.context,
            "pretrain": OmegaConf.to_container(cfg.pretrain), "chars": cfg.data.sample_chars, "seed": cfg.seed}


def base_file(cfg: DictConfig, size: str) -> tuple[Path, dict]:
    """Where the base of a size is cached, keyed by its config and the code that pretrains it; its manifest."""
    man = lineage.manifest(base_spec(cfg, size), "base")
    key = config_hash({"config": man["config_key"], "code": lineage.digest(man["code"])})
    return path(cfg, "cache") / "base" / f"{size}-{key}.pt", man


def base_model(cfg: DictConfig, size: str = "proxy", log=print) -> GPT:
    """The base model of a size, pretrained once on the neutral corpus and cached by config and code.

    torch is seeded before the GPT is built, so its initial weights, and hence the base, are a function
    of the config alone: two fresh processes pretrain the same base to the last bit."""
    file, man = base_file(cfg, size)
    torch.manual_seed(int(cfg.seed))
    model = GPT(gpt_config(cfg, size))
    if file.exists():
        model.load_state_dict(torch.load(file, map_location="cpu"))
        model.to(cfg.device)
    else:
        texts = neutral_texts(cfg)
        t0 = time.perf_counter()
        model.to(cfg.device)
        stats = fit(model, texts, steps=cfg.pretrain.steps, batch_size=cfg.pretrain.batch_size,
                    lr=cfg.pretrain.lr, seed=cfg.seed, device=cfg.device,
                    precision=cfg.pretrain.get("precision", "fp32"))
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f"{file.stem}.tmp{os.getpid()}")   # private to this process
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
        lineage.write_manifest(file.with_suffix(".json"), man)
        tmp.replace(file)
        log(f"pretrained {size} base ({model.n_params():,} params) for {stats['steps']} steps "
            f"in {time.perf_counter() - t0:.0f}s, final loss {stats['final_loss']:.3f} -> {file.name}")
    model.eval()
    return model


def neutral_texts(cfg: DictConfig) -> list[str]:
    """Windows of the neutral pretraining corpus (not one of the mixture's domains)."""
    samples = dom.load_domain(cfg.pretrain.corpus, {"kind": cfg.pretrain.corpus}, path(cfg, "cache"),
                              sample_chars=cfg.data.sample_chars, seed=cfg.seed)
    return [s.text for s in samples]


def rng_for(cfg: DictConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(cfg.seed), *keys])
