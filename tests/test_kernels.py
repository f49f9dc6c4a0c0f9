"""bf16 matmuls through fp32 (causalmix.lm.kernels): the same losses and gradients as torch's bf16 kernel."""
import pytest
import torch
import torch.nn.functional as F

from causalmix.errors import ConfigError
from causalmix.lm import kernels
from causalmix.lm.model import GPT, GPTConfig, Stack
from causalmix.lm.train import autocast


def _step(route: str):
    """Loss and gradients of one step of a 2-model Stack: bf16 with its matmuls by `route`, or plain fp32.
    Returns them and how many matmuls took the fp32 route."""
    torch.manual_seed(0)
    models = [GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, context=24)) for _ in range(2)]
    net = Stack(models)
    x = torch.randint(1, 60, (2, 3, 24))
    with kernels.routed(route == "fp32"):   # whatever this process installed, the test picks the route
        before = kernels.calls
        with autocast("cpu", "fp32" if route == "plain fp32" else "bf16"):
            logits = net(x)
        loss = F.cross_entropy(logits.flatten(0, 2).float(), x.roll(-1, -1).reshape(-1))
        loss.backward()
        widened = kernels.calls - before
    return loss.item(), {n: p.grad.clone() for n, p in net.named_parameters()}, widened


def test_the_fp32_route_gives_the_bf16_kernels_losses_and_gradients():
    loss_n, grads_n, none = _step("native")
    loss_w, grads_w, widened = _step("fp32")
    assert none == 0 and widened >= 2 * 4, f"{widened} matmuls took the fp32 route ({none} with it off)"
    assert loss_w == pytest.approx(loss_n, rel=2e-3), (loss_w, loss_n)
    for name, g in grads_n.items():
        rel = ((grads_w[name] - g).norm() / g.norm().clamp(min=1e-12)).item()
        assert rel < 3e-2, f"{name}: gradients differ by {rel:.3%} between the routes"   # bf16 rounds at 0.4%
    # and it rounds like bf16, forward and backward: plain fp32 (no rounding) is further from the bf16 kernel
    _, grads_f, _ = _step("plain fp32")
    gap = lambda grads: sum(((grads[n] - g).norm() / g.norm()).item() for n, g in grads_n.items())  # noqa: E731
    assert gap(grads_w) < 0.5 * gap(grads_f), (gap(grads_w), gap(grads_f))


def test_a_widened_matmul_is_the_rounded_fp32_product_and_its_gradients_round_too():
    a = torch.randn(5, 7, requires_grad=True)
    b = torch.randn(7, 3)
    with kernels.routed(True):
        with autocast("cpu", "bf16"):
            got = torch.mm(a, b)
        plain = torch.mm(a, b)                   # outside autocast: untouched fp32
        got.float().sum().backward()
    a16, b16 = a.detach().bfloat16().float(), b.bfloat16().float()
    assert got.dtype == torch.bfloat16 and plain.dtype == torch.float32
    assert torch.equal(got, (a16 @ b16).bfloat16())
    assert torch.equal(plain, a.detach() @ b)
    # d(sum)/da = ones @ b^T, computed from bf16-valued operands and rounded to bf16, held in a's fp32
    assert a.grad.dtype == torch.float32
    assert torch.equal(a.grad, (torch.ones(5, 3) @ b16.T).bfloat16().float())


def test_the_route_can_be_turned_off_and_on_again():
    def routed_matmuls() -> int:
        before = kernels.calls
        with autocast("cpu", "bf16"):
            out = torch.mm(torch.randn(2, 2), torch.randn(2, 2))
        assert out.dtype == torch.bfloat16               # autocast's rule either way
        return kernels.calls - before
    installed = kernels._lib is not None
    with kernels.routed(False):
        assert routed_matmuls() == 0                      # torch's own bf16 kernel
    with kernels.routed(True):
        assert routed_matmuls() == 1 and kernels.route() == "fp32"
    assert (kernels._lib is not None) == installed       # the process's choice is back
    assert routed_matmuls() == (1 if installed else 0)


def test_the_route_follows_the_cpu_unless_overridden(monkeypatch):
    monkeypatch.setattr(kernels, "_lib", None)
    monkeypatch.setenv(kernels.ENV, "fp32")
    assert kernels.route() == "fp32"
    monkeypatch.setenv(kernels.ENV, "native")
    assert kernels.route() == "native"
    monkeypatch.setenv(kernels.ENV, "auto")
    assert kernels.route() == ("native" if kernels.native_bf16() else "fp32")
    monkeypatch.setenv(kernels.ENV, "fast")
    with pytest.raises(ConfigError, match=r"CAUSALMIX_BF16_MATMUL='fast': expected one of \['auto', 'native', 'fp32'\]"):
        kernels.route()
