r"""Dynamic inference: stopping early on easy inputs, so the number of time steps varies per sample
(our addition to section 3.4 of [@xie2024efficient]).

SEENN-I [@li2023seenn] reads the network's answer after every time step and stops a sample as soon
as the answer is confident enough. With the readout averaged over the steps seen so far,

$$\bar y_b(t) = \frac{1}{t}\sum_{\tau=1}^{t} y_b[\tau], \qquad
  c_b(t) = \max_k \mathrm{softmax}(\bar y_b(t))_k, \qquad
  t_b = \min\{t : c_b(t) > \alpha\} \ (\text{or } T),$$

sample $b$ answers $\arg\max_k \bar y_b(t_b)$ after $t_b$ steps. Our neurons and layers are causal
(nothing at step $t$ depends on a later step), so $\bar y_b(t)$ is exactly the answer of the network run
on the first $t$ steps, and one full run gives every prefix. Never more than $T$ steps are used, and at
$\alpha = 1$ no confidence exceeds the threshold, so every sample runs all $T$ steps and gets the
full-$T$ answer.

`early_exit_report` counts what a sample that stops at $t_b$ really costs: its spikes and its effective
synaptic operations in steps $1..t_b$ only (a layer fed a repeated analog frame, computed once, is
charged once, at step 1, as in `metrics`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..encoding import Encoder
from ..neurons import SpikingNeuron
from ..registry import register
from ..train import Hook, LossTerm, TrainConfig, eval_batches

__all__ = ["check_threshold", "prefix_logits", "exit_steps", "EarlyExit", "ExitReport", "early_exit_report", "early_exit_reports",
           "confidence_early_exit"]


def check_threshold(threshold: float, where: str = "early exit") -> float:
    """`threshold` as a float if it lies in (0, 1], else a `ValueError` naming `where`."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"{where}: confidence threshold must lie in (0, 1], got {threshold!r}")
    return float(threshold)


def _readout(model: nn.Module) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(f"early exit needs a model with a linear readout `.head` applied at every step "
                        f"(the baselines' ConvNet and MLP); {type(model).__name__} has none")
    return head


def prefix_logits(model: nn.Module, x: Tensor) -> Tensor:
    r"""$\bar y(t)$ for every $t$: `[T, B, classes]`, the readout averaged over steps $1..t$, from one
    run of `model` on `x: [T, B, ...]` (the readout's per-step outputs are caught by a hook)."""
    head = _readout(model)
    caught: list[Tensor] = []
    handle = head.register_forward_hook(lambda m, i, o: caught.append(o))
    try:
        model(x)
    finally:
        handle.remove()
    T, B = x.shape[:2]
    per_step = caught[-1].view(T, B, -1)  # the readout sees time folded into the batch
    steps = torch.arange(1, T + 1, dtype=per_step.dtype).view(T, 1, 1)
    return per_step.cumsum(0) / steps


def exit_steps(prefix: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Per-sample exit step $t_b$ (1-based, `[B]`) and the answer there (`[B, classes]`) from
    `prefix: [T, B, classes]`."""
    alpha = check_threshold(threshold)
    T = prefix.shape[0]
    # --8<-- [start:exit]
    conf = F.softmax(prefix, dim=-1).amax(-1)  # [T, B]
    confident = conf > alpha
    confident[-1] = True  # the last step always answers
    steps = confident.float().argmax(0) + 1  # first confident step, 1-based
    chosen = prefix[steps - 1, torch.arange(prefix.shape[1])]
    # --8<-- [end:exit]
    assert int(steps.max()) <= T
    return steps, chosen


class EarlyExit(nn.Module):
    """`model` answering each sample at its confident step (`exit_steps`); `last_steps` keeps the
    steps used by the last call."""

    def __init__(self, model: nn.Module, threshold: float = 0.9) -> None:
        super().__init__()
        _readout(model)
        self.model = model
        self.threshold = check_threshold(threshold, "EarlyExit")
        self.last_steps: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        steps, chosen = exit_steps(prefix_logits(self.model, x), self.threshold)
        self.last_steps = steps
        return chosen


@dataclass
class ExitReport:
    """What early exit at `threshold` cost and gave on a test set (per sample, averaged)."""

    threshold: float
    T: int
    average_steps: float
    accuracy: float
    accuracy_full: float  # every sample run all T steps
    spikes_per_sample: float
    spikes_full: float
    synops_per_sample: float  # effective operations (MACs + ACs) in the steps used
    synops_full: float
    steps_histogram: list[int] = field(default_factory=list)  # samples exiting at t = 1..T


def _per_step_ops(module: nn.Module, x: Tensor) -> Tensor:
    """Effective operations of one call, per folded batch entry: `[N]`."""
    w_nz = (module.weight != 0).to(torch.float64)
    x_nz = (x != 0).to(torch.float64)
    if isinstance(module, nn.Conv2d):
        out = F.conv2d(x_nz, w_nz, None, module.stride, module.padding, module.dilation, module.groups)
    else:
        out = x_nz.reshape(x.shape[0], -1) @ w_nz.t()
    return out.reshape(x.shape[0], -1).sum(1)


@torch.no_grad()
def early_exit_reports(model: nn.Module, x: Tensor, y: Tensor, encoder: Encoder, thresholds: Sequence[float],
                       batch_size: int = 250, seed: int = 1234) -> list[ExitReport]:
    """Measure SEENN-I early exit of `model` at each of `thresholds` on images `x` with labels `y` (see the
    module docstring), from one run over the data; rate codes are drawn from `seed` as in `metrics.measure`."""
    alphas = [check_threshold(th, "early_exit_report") for th in thresholds]
    if isinstance(model, EarlyExit):
        model = model.model
    T = encoder.T
    n = x.shape[0]
    spikes_t = torch.zeros(T, n, dtype=torch.float64)
    ops_t = torch.zeros(T, n, dtype=torch.float64)
    prefixes = []
    weight_layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    for rows, xb in eval_batches(model, x, encoder, batch_size, seed):
        B = xb.shape[1]
        sp = torch.zeros(T, B, dtype=torch.float64)
        ops = torch.zeros(T, B, dtype=torch.float64)

        def on_spikes(m, i, o):
            sp.add_(o.reshape(T, B, -1).sum(2).to(torch.float64))

        def on_layer(m, i, o):
            per = _per_step_ops(m, i[0])
            if per.shape[0] == B:  # a repeated frame computed once: charged at step 1
                ops[0] += per
            else:
                ops.add_(per.view(T, B))

        handles = [m.register_forward_hook(on_spikes) for m in neurons]
        handles += [m.register_forward_hook(on_layer) for m in weight_layers]
        try:
            prefixes.append(prefix_logits(model, xb))
        finally:
            for h in handles:
                h.remove()
        spikes_t[:, rows] = sp
        ops_t[:, rows] = ops
    prefix = torch.cat(prefixes, dim=1)  # [T, N, classes]
    correct_full = (prefix[-1].argmax(1) == y).sum().item()
    reports = []
    for alpha in alphas:
        steps, chosen = exit_steps(prefix, alpha)
        used = (torch.arange(1, T + 1).view(T, 1) <= steps.view(1, n)).to(torch.float64)  # [T, N]
        reports.append(ExitReport(
            threshold=alpha, T=T, average_steps=steps.double().mean().item(),
            accuracy=(chosen.argmax(1) == y).sum().item() / n, accuracy_full=correct_full / n,
            spikes_per_sample=(spikes_t * used).sum().item() / n, spikes_full=spikes_t.sum().item() / n,
            synops_per_sample=(ops_t * used).sum().item() / n, synops_full=ops_t.sum().item() / n,
            steps_histogram=torch.bincount(steps, minlength=T + 1)[1:].tolist()))
    return reports


def early_exit_report(model: nn.Module, x: Tensor, y: Tensor, encoder: Encoder, threshold: float,
                      batch_size: int = 250, seed: int = 1234) -> ExitReport:
    """`early_exit_reports` at one threshold."""
    return early_exit_reports(model, x, y, encoder, [threshold], batch_size, seed)[0]


@register("confidence-early-exit", kind="transform", taxonomy="spike-reduction/dynamic-inference",
          keys=("li2023seenn",))
def confidence_early_exit(model: nn.Module, data: Split, encoder: Encoder, *, threshold: float = 0.9,
                          train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                          loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""SEENN-I: per-sample early exit once the averaged readout's softmax confidence exceeds
    `threshold` [@li2023seenn].

    The weights are not changed by the exit rule itself; `train` (default none) fine-tunes the network
    first (with the caller's `loss_terms`), `finetune` (default none) after. The result is an `EarlyExit`
    module fed by the same encoder; `.info["report"]` is its `ExitReport` on the test set (average
    steps, accuracy at the exit and at full $T$, spikes and synaptic operations in the steps used).
    SEENN-II's reinforcement-learned policy is not implemented."""
    alpha = check_threshold(threshold, "confidence-early-exit")
    _readout(model)
    net = copy.deepcopy(model)
    history: list[dict] = []
    none = TrainConfig(epochs=0)
    run_phase(net, data, encoder, budget(train, none, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, none, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    report = early_exit_report(net, data.test_x, data.test_y, encoder, alpha)
    return Compressed(EarlyExit(net, alpha), encoder, history, {"report": report})
