"""bf16 matmuls on CPUs without a bf16 GEMM: the same arithmetic, at fp32 speed.

Under bf16 autocast (`precision: bf16`, the default) every matmul takes bf16 operands, accumulates in fp32
and rounds its result to bf16. Where the CPU has bf16 instructions (AVX512-BF16 or AMX; torch's own test:
`torch.ops.mkldnn._is_mkldnn_bf16_supported()`), oneDNN does that in hardware and bf16 is the faster dtype.
Elsewhere (AVX2 machines: most laptops, AMD Zen 3, older Xeons) torch falls back to a generic kernel that
measured 15-50x slower than fp32 on a Zen 3, which made a `make test` of 8 minutes take over an hour.

On such CPUs `install()` replaces autocast's own rule for the matmul ops (linear, matmul, mm, addmm, bmm,
baddbmm: its kernels at the AutocastCPU dispatch key) with one that computes the same thing through fp32:
each floating operand is rounded to bf16 as autocast would round it, widened back exactly, multiplied in
fp32, and the product rounded to bf16. Autograd records those casts and the fp32 product, so the backward
matmuls also take bf16-valued operands, accumulate in fp32 and round their results to bf16 (the casts'
backward does the rounding). A run thus computes what the hardware kernel computes, up to the order of
summation, as two CPUs or thread counts already differ. That is why this module is not part of the cached
results' code key (`causalmix.lineage`): like the CPU itself and the BLAS torch picks, it decides how, not
what, is computed. On a CPU with bf16 GEMM it changes nothing. tests/test_kernels.py checks that it gives the
hardware kernel's losses and gradients.

Only the six matmul ops pass through Python. (An earlier version intercepted every op with a
TorchDispatchMode to catch the bf16 matmuls below autograd; that cost 14% of a smoke proxy run's time in
dispatch alone.) Matmuls outside autocast are untouched: the models keep fp32 weights, so bf16 operands only
ever come from autocast.

`CAUSALMIX_BF16_MATMUL` overrides the choice: `auto` (the default), `native` (torch's kernel always) or
`fp32` (this route always).
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch

ENV = "CAUSALMIX_BF16_MATMUL"
CHOICES = ("auto", "native", "fp32")
_aten = torch.ops.aten
# the ops autocast runs in bf16 that our models call (nn.Linear, the stacked models' baddbmm, scoring)
WIDENED = {"linear": _aten.linear.default, "matmul": _aten.matmul.default, "mm": _aten.mm.default,
           "addmm": _aten.addmm.default, "bmm": _aten.bmm.default, "baddbmm": _aten.baddbmm.default}
_NO_AUTOCAST = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)
calls = 0          # matmuls that took the route in this process (tests read it)


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (torch then uses oneDNN's bf16 GEMM)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _bf16_valued(x):
    """What autocast makes of an operand (a floating CPU tensor other than fp64 becomes bf16), held in fp32."""
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64 and x.device.type == "cpu":
        return x.to(torch.bfloat16).float()
    return x


def _widened(op):
    def kernel(*args, **kwargs):
        global calls
        calls += 1
        with torch._C._ExcludeDispatchKeyGuard(_NO_AUTOCAST):
            out = op(*(_bf16_valued(a) for a in args), **{k: _bf16_valued(v) for k, v in kwargs.items()})
            return out.to(torch.bfloat16)
    return kernel


def _register() -> torch.library.Library:
    lib = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():   # torch warns that each replaces autocast's registered kernel: it does
        warnings.simplefilter("ignore")
        for name, op in WIDENED.items():
            lib.impl(name, _widened(op), "AutocastCPU")
    return lib


_lib: torch.library.Library | None = None


def choice() -> str:
    """The configured route: $CAUSALMIX_BF16_MATMUL, else `auto`; a bad value is one clear line."""
    value = os.environ.get(ENV, "auto").strip() or "auto"
    if value not in CHOICES:
        from causalmix.errors import ConfigError
        raise ConfigError(f"{ENV}={value!r}: expected one of {list(CHOICES)}")
    return value


def route() -> str:
    """How bf16 matmuls run in this process: 'native' or 'fp32' (the route install() takes or took)."""
    if _lib is not None:
        return "fp32"
    c = choice()
    return "fp32" if c == "fp32" or (c == "auto" and not native_bf16()) else "native"


def install() -> str:
    """Route autocast's bf16 matmuls through fp32 for the rest of this process where route() says so;
    idempotent. Returns the route. Called when `causalmix.lm` is imported, so every process that trains or
    scores has it."""
    global _lib
    if _lib is None and route() == "fp32":
        _lib = _register()
    return route()


@contextlib.contextmanager
def routed(on: bool):
    """For tests: within the block the route is on (`True`) or off (torch's own bf16 kernels), whatever
    install() chose; the process's choice is restored after."""
    global _lib
    before = _lib
    if before is not None:
        before._destroy()
    _lib = _register() if on else None
    try:
        yield
    finally:
        if _lib is not None:
            _lib._destroy()
        _lib = _register() if before is not None else None
