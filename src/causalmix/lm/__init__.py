"""lm: the character-level GPT, its training and scoring loops.

Importing the package routes bf16 matmuls through fp32 on CPUs without bf16 GEMM (`lm.kernels`)."""
from causalmix.lm import kernels as _kernels

_kernels.install()
