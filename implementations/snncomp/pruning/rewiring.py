r"""Mechanics of the methods that rewire or re-parameterise synapses while training: Grad R
[@chen2021pruning], Deep R [@bellec2018deep], RigL [@evci2020rigging] and SET [@mocanu2018scalable],
and the soft-threshold reparameterisation of STDS and LATS [@chen2022state; @chen2023unified].

Each is a parametrization of a layer's weight (how the weight is computed from a hidden parameter
$\theta$) and a hook (what happens around the optimiser step of `train.fit`). They are kept apart
from the registered methods (in `unstructured`), which read as their phases. `train.fit` trains with
Adam; where a paper's optimiser differs, the hook applies the difference itself (Grad R's prior step,
Deep R's noisy SGD step), with the learning rate `schedules.step_learning_rates` says `fit` uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..train import Hook, Step
from .masks import Masks

__all__ = ["GradRWeight", "GradRPrior", "DeepRWeight", "DeepRHook", "RegrowHook", "SoftThresholdWeight",
           "ThresholdSchedule", "ADAM_BETA1"]

ADAM_BETA1 = 0.9  # the first-moment decay of `train.fit`'s Adam (torch's default)


# ----------------------------------------------------------------------------- Grad R


class _SignedReLU(torch.autograd.Function):
    r"""$w = s \cdot \mathrm{relu}(\theta)$ whose backward passes $s \cdot \partial L/\partial w$
    to $\theta$ even where $\theta \le 0$ (the rewiring gradient of Grad R)."""

    @staticmethod
    def forward(ctx, theta, sign):  # type: ignore[override]
        ctx.save_for_backward(sign)
        return sign * theta.clamp_min(0)  # w = s relu(theta)

    @staticmethod
    def backward(ctx, grad_w):  # type: ignore[override]
        (sign,) = ctx.saved_tensors
        return grad_w * sign, None  # dL/dtheta := s dL/dw, for every theta


class GradRWeight(nn.Module):
    r"""Parametrization of a weight by its hidden synaptic parameter $\theta$ and a fixed sign."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", torch.where(weight < 0, -1.0, 1.0).to(weight.dtype))

    def forward(self, theta: Tensor) -> Tensor:
        return _SignedReLU.apply(theta, self.sign)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight.abs()  # theta = |w| initially


class GradRPrior(Hook):
    r"""The Laplacian prior step of Grad R, taken outside Adam as in the authors' optimiser.

    After Adam has moved every $\theta$ by its gradient step,
    $\theta \leftarrow \theta - \alpha\,\eta_t / (1 - \beta_1^{t}) \cdot \mathrm{sign}(\theta_{t-1} - \mu)$:
    the learning rate $\eta_t$ of the step, Adam's first-moment bias correction (the authors scale the
    prior by Adam's step size, which includes it) and the sign taken at $\theta$ before the step.
    """

    def __init__(self, thetas: Sequence[Tensor], alpha: float, mu: float, lrs: Sequence[float]) -> None:
        self.thetas, self.alpha, self.mu, self.lrs = list(thetas), alpha, mu, list(lrs)
        self._dirs: list[Tensor] = []

    def after_backward(self, model: nn.Module, step: Step) -> None:
        self._dirs = [torch.sign(t.detach() - self.mu) for t in self.thetas]  # sign(theta_{t-1} - mu)

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: Step) -> None:
        t = step.index
        size = self.alpha * self.lrs[min(t, len(self.lrs) - 1)] / (1 - ADAM_BETA1 ** (t + 1))
        for theta, d in zip(self.thetas, self._dirs):
            theta.sub_(size * d)  # theta -= alpha * eta_t / (1 - beta1^t) * sign(theta - mu)


# ----------------------------------------------------------------------------- Deep R


class DeepRWeight(nn.Module):
    r"""Deep R's parametrization: $w = s\,\theta$ while $\theta > 0$ (active), $w = 0$ while
    $\theta \le 0$ (dormant), with a fixed sign $s$. `active` picks the connections active at the start."""

    def __init__(self, weight: Tensor, active: Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", torch.where(weight < 0, -1.0, 1.0).to(weight.dtype))
        self.register_buffer("start", active.detach().to(weight.dtype).clone())

    def forward(self, theta: Tensor) -> Tensor:
        return self.sign * theta.clamp_min(0)  # w = s theta if theta > 0 else 0

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight.abs() * self.start  # theta = |w| where active, 0 (dormant) elsewhere


class DeepRHook(Hook):
    r"""Deep R's update and rewiring [@bellec2018deep], every step, in place of Adam for the $\theta$.

    For every active connection ($\theta_k > 0$), noisy SGD with an $L_1$ term:
    $\theta_k \leftarrow \theta_k - \eta_t(\partial E/\partial \theta_k + \alpha) + \sqrt{2\eta_t T}\,\nu_k$,
    $\nu_k \sim \mathcal{N}(0, 1)$; dormant connections are not updated. A connection whose
    $\theta$ reaches 0 turns dormant; then, in each group of layers, dormant connections drawn
    uniformly at random (never one masked before the method, `allowed` = 0) are reactivated at
    $\theta = \epsilon$ until exactly `K` are active again. `lr_scale[t]` is $\eta_t$ divided by the
    base rate, so $\eta_t$ follows `fit`'s schedule. The hook clears the $\theta$ gradients, so Adam
    leaves the $\theta$ alone (it skips parameters without a gradient) and trains everything else.
    """

    EPS = 1e-12  # theta of a reactivated connection (as in the authors' scripts)

    def __init__(self, thetas: dict[str, Tensor], groups: Sequence[Sequence[str]], K: Sequence[int], *, lr: float,
                 lr_scale: Sequence[float], l1: float, temperature: float, seed: int,
                 allowed: Masks | None = None) -> None:
        self.thetas, self.groups, self.K = thetas, [list(g) for g in groups], list(K)
        self.lr, self.lr_scale, self.l1, self.temperature = lr, list(lr_scale), l1, temperature
        self.allowed = allowed
        self.gen = torch.Generator().manual_seed(seed)
        self.reactivated = 0

    @torch.no_grad()
    def after_backward(self, model: nn.Module, step: Step) -> None:
        eta = self.lr * self.lr_scale[min(step.index, len(self.lr_scale) - 1)]
        for theta in self.thetas.values():
            grad = theta.grad if theta.grad is not None else torch.zeros_like(theta)
            noise = torch.randn(theta.shape, generator=self.gen, dtype=theta.dtype)
            update = -eta * (grad + self.l1) + math.sqrt(2 * eta * self.temperature) * noise
            theta.add_(update * (theta > 0))  # active connections only
            theta.grad = None  # Adam skips the theta
        for names, k in zip(self.groups, self.K):
            self.reactivated += self._rewire(names, k)

    def _rewire(self, names: list[str], k: int) -> int:
        active = sum(int((self.thetas[n] > 0).sum()) for n in names)
        need = k - active
        if need <= 0:
            return 0
        dormant = [(self.thetas[n] <= 0) if self.allowed is None else (self.thetas[n] <= 0) & (self.allowed[n] != 0)
                   for n in names]
        flat = torch.cat([d.flatten() for d in dormant]).nonzero().flatten()
        pick = flat[torch.randperm(flat.numel(), generator=self.gen)[:need]]
        start = 0
        for n in names:
            size = self.thetas[n].numel()
            mine = pick[(pick >= start) & (pick < start + size)] - start
            self.thetas[n].view(-1)[mine] = self.EPS
            start += size
        return int(pick.numel())

    def active(self) -> list[int]:
        """Active connections of each group."""
        return [sum(int((self.thetas[n] > 0).sum()) for n in names) for names in self.groups]


# ----------------------------------------------------------------------------- RigL and SET


class RegrowHook(Hook):
    r"""Drop and regrow at fixed density: RigL [@evci2020rigging] with `grow="gradient"`, SET
    [@mocanu2018scalable] with `grow="random"`.

    After the optimiser step of every `every`-th step $t$ ($0 < t <$ `stop`), in each layer with
    $n$ active weights: drop the $k = \lfloor f_t n \rfloor$ active weights of smallest magnitude,
    then activate $k$ of the weights not kept (the dropped ones included), those with the largest
    dense gradient $|\partial L/\partial w|$ of this step (RigL) or drawn at random (SET). Newly
    activated weights start at zero; a weight dropped and regrown at once keeps its value under RigL
    and restarts at zero under SET, as in the authors' code. $f_t = f\,(1 + \cos(\pi t/t_{end}))/2$
    with `anneal="cosine"` (RigL), $f_t = f$ with `anneal="constant"` (SET). Entries masked before
    the method started (`allowed` = 0) never regrow.
    """

    def __init__(self, layers, masks, *, fraction: float, every: int, stop: int, grow: str, anneal: str, seed: int,
                 allowed: Masks | None = None) -> None:
        self.layers, self.masks, self.allowed = layers, masks, allowed
        self.fraction, self.every, self.stop, self.grow, self.anneal = fraction, every, stop, grow, anneal
        self.gen = torch.Generator().manual_seed(seed)
        self.rewired = 0
        self.params = {n: m.parametrizations.weight[0] for n, m in layers.items()}
        for p in self.params.values():
            p.record_grad = grow == "gradient"  # dense dL/dw: RigL's growth score

    def after_step(self, model: nn.Module, step: Step) -> None:
        t = step.index
        if 0 < t < self.stop and t % self.every == 0:
            f = self.fraction * ((1 + math.cos(math.pi * t / self.stop)) / 2 if self.anneal == "cosine" else 1.0)
            for n in self.masks:
                self._rewire(n, f)
        for p in self.params.values():
            p.grad = None

    def release(self) -> None:
        """Stop recording dense gradients (after the rewiring phase)."""
        for p in self.params.values():
            p.record_grad, p.grad = False, None

    @torch.no_grad()
    def _rewire(self, name: str, f: float) -> None:
        param = self.params[name]
        theta = self.layers[name].parametrizations.weight.original.view(-1)
        flat_m = param.mask.view(-1)
        active = flat_m.nonzero().flatten()
        k = int(f * active.numel())
        if k == 0:
            return
        drop = active[torch.topk(theta[active].abs(), k, largest=False).indices]  # smallest |w|
        keep = flat_m.clone()
        keep[drop] = 0
        free = keep == 0 if self.allowed is None else (keep == 0) & (self.allowed[name].view(-1) != 0)
        candidates = free.nonzero().flatten()
        if self.grow == "gradient" and param.grad is not None:
            score = param.grad.view(-1)[candidates].abs()  # |dL/dw|, dense
        else:
            score = torch.rand(candidates.numel(), generator=self.gen)
        grown = candidates[torch.topk(score, min(k, candidates.numel())).indices]
        fresh = torch.zeros_like(keep, dtype=torch.bool)
        fresh[grown] = True
        if self.grow == "gradient":
            fresh &= flat_m == 0  # RigL: a dropped-and-regrown weight keeps its value
        keep[grown] = 1
        theta[keep == 0] = 0
        theta[fresh] = 0  # grown weights start at zero
        flat_m.copy_(keep)
        self.masks[name] = param.mask
        self.rewired += k


# ----------------------------------------------------------------------------- soft threshold


class _SoftThreshold(torch.autograd.Function):
    r"""$w = \mathrm{sign}(\theta)\,\mathrm{relu}(|\theta| - d)$ with the straight-through backward
    of the authors' code ('stmod'): $\partial L/\partial \theta := \partial L/\partial w$ everywhere."""

    @staticmethod
    def forward(ctx, theta, d):  # type: ignore[override]
        return theta.sign() * (theta.abs() - d).clamp_min(0)  # w = sign(theta) relu(|theta| - d)

    @staticmethod
    def backward(ctx, grad_w):  # type: ignore[override]
        return grad_w, None


class SoftThresholdWeight(nn.Module):
    r"""Parametrization $w = \mathrm{sign}(\theta)\,\mathrm{relu}(|\theta| - d)$ of a weight by a hidden
    $\theta$ and the current threshold `d` (a buffer the schedule sets). Survivors are offset by the
    current $d$ only, once, in the forward pass; $\theta$ itself is never shrunk."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("d", torch.zeros(()))

    def forward(self, theta: Tensor) -> Tensor:
        return _SoftThreshold.apply(theta, self.d)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight  # theta = w: at d = 0 the model is unchanged


class ThresholdSchedule(Hook):
    r"""The threshold after step $t$: $d_t = D \sum_{i \le t} \eta_i / \sum_i \eta_i$, so each step
    raises it in proportion to its learning rate (the scheduler of LATS [@chen2023unified]; under a
    cosine learning rate it is S-LATS's $D\,(t/N + \sin(\pi t/N)/\pi)$, under a constant one the linear
    schedule of STDS [@chen2022state]). It reaches $D$ at the last step."""

    def __init__(self, params: Sequence[SoftThresholdWeight], final: float, lrs: Sequence[float]) -> None:
        self.params, self.final = list(params), final
        total, self.cum = 0.0, []
        for lr in lrs:
            total += lr
            self.cum.append(total)
        self.thresholds: list[float] = []

    def after_step(self, model: nn.Module, step: Step) -> None:
        t = min(step.index, len(self.cum) - 1)
        d = self.final * self.cum[t] / self.cum[-1]  # d_t = D sum_{i<=t} eta_i / sum_i eta_i
        for p in self.params:
            p.d.fill_(d)
        self.thresholds.append(d)
