"""bf16 matmuls on CPUs without a bf16 GEMM: the same arithmetic, at fp32 speed.

Under bf16 autocast (`precision: bf16`, the default) every matmul takes bf16 operands, accumulates in fp32
and rounds its result to bf16. Where the CPU has bf16 instructions (AVX512-BF16 or AMX; torch's own test:
`torch.ops.mkldnn._is_mkldnn_bf16_supported()`), oneDNN does that in hardware and bf16 is the faster dtype.
Elsewhere (AVX2 machines: most laptops, AMD Zen 3, older Xeons) torch falls back to a generic kernel that
measured 15-50x slower than fp32 on a Zen 3, which made a `make test` of 8 minutes take over an hour.

On such CPUs `install()` routes the four matmul ops (mm, addmm, bmm, baddbmm; `linear` and `matmul`
decompose into them, forward and backward) through fp32 instead: the bf16 operands are widened exactly,
multiplied with fp32 accumulation, and the result rounded to bf16, so a run computes what the hardware
kernel computes, up to the order of summation, as two CPUs or thread counts already differ. That is why this
module is not part of the cached results' code key (`causalmix.lineage`): like the CPU itself and the
BLAS torch picks, it decides how, not what, is computed. On a CPU with bf16 GEMM it changes nothing.
tests/test_kernels.py checks that it gives the hardware-free kernel's losses and gradients.

`CAUSALMIX_BF16_MATMUL` overrides the choice: `auto` (the default), `native` (torch's kernel always) or
`fp32` (this route always).
"""
from __future__ import annotations

import os

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ENV = "CAUSALMIX_BF16_MATMUL"
CHOICES = ("auto", "native", "fp32")
_aten = torch.ops.aten
_MATMULS = frozenset({_aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default})


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (torch then uses oneDNN's bf16 GEMM)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class Bf16MatmulViaFp32(TorchDispatchMode):
    """A dispatch mode: a CPU matmul whose tensor arguments are all bf16 runs in fp32, its result rounded to
    bf16; every other op passes through unchanged."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _MATMULS:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if tensors and all(t.dtype == torch.bfloat16 and t.device.type == "cpu" for t in tensors):
                wide = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
                return func(*wide, **kwargs).to(torch.bfloat16)
        return func(*args, **kwargs)


_active: Bf16MatmulViaFp32 | None = None


def choice() -> str:
    """The configured route: $CAUSALMIX_BF16_MATMUL, else `auto`; a bad value is one clear line."""
    value = os.environ.get(ENV, "auto").strip() or "auto"
    if value not in CHOICES:
        from causalmix.errors import ConfigError
        raise ConfigError(f"{ENV}={value!r}: expected one of {list(CHOICES)}")
    return value


def route() -> str:
    """How bf16 matmuls run in this process: 'native' or 'fp32' (the route install() takes or took)."""
    if _active is not None:
        return "fp32"
    c = choice()
    return "fp32" if c == "fp32" or (c == "auto" and not native_bf16()) else "native"


def install() -> str:
    """Route bf16 matmuls through fp32 for the rest of this thread where route() says so; idempotent. Returns
    the route. Called when `causalmix.lm` is imported, so every process that trains or scores has it."""
    global _active
    if _active is None and route() == "fp32":
        _active = Bf16MatmulViaFp32()
        _active.__enter__()
    return route()
