"""bf16 matmuls through fp32 (causalmix.lm.kernels): the same losses and gradients as torch's bf16 kernel."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import _disable_current_modes

from causalmix.errors import ConfigError
from causalmix.lm import kernels
from causalmix.lm.model import GPT, GPTConfig, Stack
from causalmix.lm.train import autocast


class Counting(kernels.Bf16MatmulViaFp32):
    def __init__(self):
        super().__init__()
        self.widened = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in kernels._MATMULS and all(a.dtype == torch.bfloat16 for a in args if isinstance(a, torch.Tensor)):
            self.widened += 1
        return super().__torch_dispatch__(func, types, args, kwargs)


def _step(route: str):
    """Loss and gradients of one step of a 2-model Stack: bf16 with its matmuls by `route`, or plain fp32."""
    torch.manual_seed(0)
    models = [GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, context=24)) for _ in range(2)]
    net = Stack(models)
    x = torch.randint(1, 60, (2, 3, 24))
    with _disable_current_modes():          # whatever this process installed, the test picks the route
        mode = Counting() if route == "fp32" else None
        if mode:
            mode.__enter__()
        try:
            with autocast("cpu", "fp32" if route == "plain fp32" else "bf16"):
                logits = net(x)
            loss = F.cross_entropy(logits.flatten(0, 2).float(), x.roll(-1, -1).reshape(-1))
            loss.backward()
        finally:
            if mode:
                mode.__exit__(None, None, None)
    return loss.item(), {n: p.grad.clone() for n, p in net.named_parameters()}, mode


def test_the_fp32_route_gives_the_bf16_kernels_losses_and_gradients():
    loss_n, grads_n, _ = _step("native")
    loss_w, grads_w, mode = _step("fp32")
    assert mode.widened >= 3 * 2 * 4, f"only {mode.widened} bf16 matmuls took the fp32 route (forward and backward)"
    assert loss_w == pytest.approx(loss_n, rel=2e-3), (loss_w, loss_n)
    for name, g in grads_n.items():
        rel = ((grads_w[name] - g).norm() / g.norm().clamp(min=1e-12)).item()
        assert rel < 3e-2, f"{name}: gradients differ by {rel:.3%} between the routes"   # bf16 rounds at 0.4%
    # and it rounds like bf16: plain fp32 (no rounding) is further from the bf16 kernel than the route is
    _, grads_f, _ = _step("plain fp32")
    gap = lambda grads: sum(((grads[n] - g).norm() / g.norm()).item() for n, g in grads_n.items())  # noqa: E731
    assert gap(grads_w) < 0.5 * gap(grads_f), (gap(grads_w), gap(grads_f))


def test_a_widened_matmul_is_the_rounded_fp32_product():
    a, b = torch.randn(5, 7).bfloat16(), torch.randn(7, 3).bfloat16()
    with _disable_current_modes():
        with kernels.Bf16MatmulViaFp32():
            got = torch.mm(a, b)
            plain = torch.mm(a.float(), b.float())      # fp32 operands pass through untouched
    assert got.dtype == torch.bfloat16 and plain.dtype == torch.float32
    assert torch.equal(got, (a.float() @ b.float()).bfloat16())


def test_the_route_follows_the_cpu_unless_overridden(monkeypatch):
    monkeypatch.setattr(kernels, "_active", None)
    monkeypatch.setenv(kernels.ENV, "fp32")
    assert kernels.route() == "fp32"
    monkeypatch.setenv(kernels.ENV, "native")
    assert kernels.route() == "native"
    monkeypatch.setenv(kernels.ENV, "auto")
    assert kernels.route() == ("native" if kernels.native_bf16() else "fp32")
    monkeypatch.setenv(kernels.ENV, "fast")
    with pytest.raises(ConfigError, match=r"CAUSALMIX_BF16_MATMUL='fast': expected one of \['auto', 'native', 'fp32'\]"):
        kernels.route()
