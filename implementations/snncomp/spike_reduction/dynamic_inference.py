r"""Dynamic inference: stopping early on easy inputs, so the number of time steps varies per sample
(our addition to section 3.4 of [@xie2024efficient]).

SEENN-I [@li2023seenn] reads the network's answer after every time step and stops a sample as soon
as the answer is confident enough. As in the authors' `test_snn.py`, the answer after $t$ steps is the
running *sum* of the per-step readouts (not their mean, which would make the softmax $t$ times flatter):

$$Y_b(t) = \sum_{\tau=1}^{t} y_b[\tau], \qquad
  c_b(t) = \max_k \mathrm{softmax}(Y_b(t))_k, \qquad
  t_b = \min\{t : c_b(t) > \alpha\} \ (\text{or } T),$$

sample $b$ answers $\arg\max_k Y_b(t_b)$ after $t_b$ steps. Our neurons and layers are causal
(nothing at step $t$ depends on a later step), so $Y_b(t)/t$ is exactly the output of the network run
on the first $t$ steps, and one full run gives every prefix. Never more than $T$ steps are used, and at
$\alpha = 1$ no confidence exceeds the threshold, so every sample runs all $T$ steps and gets the
full-$T$ answer.

The authors train their SNNs with TET [@deng2022temporal] (`tet_loss`, the mean over steps of the
per-step cross-entropy plus a small MSE pull of the per-step readouts towards a constant), which makes
every prefix a good classifier. `confidence-early-exit` fine-tunes with it when asked (`tet=True`); the
committed benchmark applies the exit rule to baselines trained with the plain cross-entropy of the
time-averaged readout. The confidence threshold is a setting chosen from data, so `calibrate_threshold`
picks it on a split's *validation* images (`Split.with_validation`), never on its test images.

`early_exit_report` counts what a sample that stops at $t_b$ really costs: its spikes, its neuron
updates and its effective synaptic operations in steps $1..t_b$ only (a layer fed a repeated analog
frame, computed once, is charged once, at step 1, as in `metrics`).
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
from ..data.encoding import Encoder
from ..neurons import SpikingNeuron
from ..registry import all_but, register
from ..spikes import hooked, record_inputs
from ..train import NONE, Hook, LossTerm, Step, TrainConfig, eval_batches

__all__ = ["check_threshold", "step_logits", "prefix_logits", "exit_steps", "EarlyExit", "ExitReport", "early_exit_report",
           "early_exit_reports", "Calibration", "calibrate_threshold", "tet_loss", "no_criterion", "confidence_early_exit"]


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


def step_logits(model: nn.Module, x: Tensor) -> Tensor:
    """The readout of every step, `[T, B, classes]`, from one run of `model` on `x: [T, B, ...]` (the
    readout's per-step outputs are caught by a hook)."""
    head = _readout(model)
    caught: list[Tensor] = []
    with hooked([head], lambda m, i, o: caught.append(o)):
        model(x)
    T, B = x.shape[:2]
    return caught[-1].view(T, B, -1)  # the readout sees time folded into the batch


def prefix_logits(model: nn.Module, x: Tensor) -> Tensor:
    r"""$Y(t)$ for every $t$: `[T, B, classes]`, the running sum of the readout over steps $1..t$ (SEENN's
    `partial_logits`), from one run of `model` on `x: [T, B, ...]`. $Y(t)/t$ is the model's output on
    the first $t$ steps."""
    # --8<-- [start:prefix]
    return step_logits(model, x).cumsum(0)  # Y(t) = sum_{tau <= t} y[tau]
    # --8<-- [end:prefix]


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
    """`model` answering each sample at its confident step (`exit_steps`) with the summed readout
    $Y(t_b)$ (the argmax is the model's answer on the first $t_b$ steps); `last_steps` keeps the
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
    neuron_updates_per_sample: float = 0.0  # membrane updates in the steps used (every neuron, every step)
    neuron_updates_full: float = 0.0
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
    updates_per_step = 0.0  # neurons per sample, each updated once per step
    prefixes = []
    weight_layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    for rows, xb in eval_batches(model, x, encoder, batch_size, seed):
        B = xb.shape[1]
        sp = torch.zeros(T, B, dtype=torch.float64)
        ops = torch.zeros(T, B, dtype=torch.float64)

        sizes: list[int] = []

        def on_spikes(m, i, o):
            sp.add_(o.reshape(T, B, -1).sum(2).to(torch.float64))
            sizes.append(o[0, 0].numel())

        def on_layer(m, i, o):
            per = _per_step_ops(m, i[0])
            if per.shape[0] == B:  # a repeated frame computed once: charged at step 1
                ops[0] += per
            else:
                ops.add_(per.view(T, B))

        with hooked(neurons, on_spikes), hooked(weight_layers, on_layer):
            prefixes.append(prefix_logits(model, xb))
        spikes_t[:, rows] = sp
        ops_t[:, rows] = ops
        updates_per_step = float(sum(sizes))
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
            neuron_updates_per_sample=updates_per_step * steps.double().mean().item(),
            neuron_updates_full=updates_per_step * T,
            steps_histogram=torch.bincount(steps, minlength=T + 1)[1:].tolist()))
    return reports


def early_exit_report(model: nn.Module, x: Tensor, y: Tensor, encoder: Encoder, threshold: float,
                      batch_size: int = 250, seed: int = 1234) -> ExitReport:
    """`early_exit_reports` at one threshold."""
    return early_exit_reports(model, x, y, encoder, [threshold], batch_size, seed)[0]


@dataclass
class Calibration:
    """The threshold `calibrate_threshold` chose and the validation reports it chose from."""

    threshold: float
    reports: list[ExitReport]
    max_drop: float


def calibrate_threshold(model: nn.Module, data: Split, encoder: Encoder, thresholds: Sequence[float],
                        max_drop: float = 0.5, batch_size: int = 250, seed: int = 1234) -> Calibration:
    """Choose the confidence threshold on the *validation* images of `data` (`Split.with_validation`):
    the one with the fewest average steps among those losing at most `max_drop` accuracy points against
    full $T$ there, or the one that loses least when none does. A split without a validation part is an
    error; the test images are never looked at."""
    if not getattr(data, "has_validation", False):
        raise ValueError("calibrate_threshold: the split has no validation part; carve one with "
                         "split.with_validation(fraction, seed) (thresholds are never chosen on test images)")
    val = data.validation()
    reports = early_exit_reports(model, val.test_x, val.test_y, encoder, thresholds, batch_size, seed)
    drop = [100 * (r.accuracy_full - r.accuracy) for r in reports]
    ok = [(r.average_steps, r.threshold) for r, d in zip(reports, drop) if d <= max_drop]
    chosen = min(ok)[1] if ok else reports[min(range(len(reports)), key=drop.__getitem__)].threshold
    return Calibration(chosen, reports, max_drop)


@register("tet-loss", kind="objective", taxonomy="spike-reduction/dynamic-inference", keys=("deng2022temporal",),
          keeps=all_but("early-exit"))
def tet_loss(step: Step, means: float = 1.0, lamb: float = 1e-3) -> Tensor:
    r"""TET, temporal efficient training [@deng2022temporal]: the cross-entropy of every step's readout,
    averaged over the steps, plus a small MSE pull of the per-step readouts towards `means`,
    $(1-\lambda)\frac1T\sum_t \mathrm{CE}(y[t], c) + \lambda\,\mathrm{MSE}(y, \phi)$, with the defaults of
    the authors' code ($\phi = 1$, $\lambda = 10^{-3}$).

    The per-step readouts come from the readout's recorded inputs (`Step.synaptic_inputs["head"]`, which
    `train.fit` fills; a hand-built step is re-run). As a loss term it is added to `fit`'s criterion;
    to train with TET alone, pass `criterion=no_criterion` as `confidence_early_exit(tet=True)` does."""
    if not 0.0 <= lamb <= 1.0:
        raise ValueError(f"tet-loss: lamb must lie in [0, 1], got {lamb!r}")
    head = _readout(step.model)
    inputs = step.synaptic_inputs
    if not inputs or not inputs.get("head"):
        with record_inputs(step.model) as inputs:
            step.model(step.inputs)
    T, B = step.inputs.shape[:2]
    per_step = head(inputs["head"][-1]).view(T, B, -1)  # y[t], [T, B, classes]
    # --8<-- [start:tet]
    ce = torch.stack([F.cross_entropy(per_step[t], step.targets) for t in range(T)]).mean()
    mse = F.mse_loss(per_step, torch.full_like(per_step, float(means)))
    return (1 - lamb) * ce + lamb * mse
    # --8<-- [end:tet]


def no_criterion(logits: Tensor, targets: Tensor) -> Tensor:
    """A `fit` criterion that adds nothing, for training with a loss term alone (TET)."""
    return logits.sum() * 0.0


@register("confidence-early-exit", kind="transform", taxonomy="spike-reduction/dynamic-inference",
          keys=("li2023seenn",),
          leaves=("early-exit",), keeps=all_but("early-exit"), changes=("model=EarlyExit",),
          requires={"model": ("ConvNet", "MLP")})
def confidence_early_exit(model: nn.Module, data: Split, encoder: Encoder, *, threshold: float | None = 0.9,
                          thresholds: Sequence[float] = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 0.999),
                          max_drop: float = 0.5, tet: bool = False, train: TrainConfig | None = None,
                          finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                          hooks: Sequence[Hook] = ()) -> Compressed:
    r"""SEENN-I: per-sample early exit once the softmax confidence of the summed readout exceeds
    `threshold` [@li2023seenn].

    The weights are not changed by the exit rule itself; `train` (default none) fine-tunes the network
    first (with TET as the only loss when `tet=True`, as the authors train, else the usual cross-entropy;
    the caller's `loss_terms` are added either way), `finetune` (default none) after. `threshold=None`
    chooses it with `calibrate_threshold` among `thresholds` on the validation images of `data` (which
    must have them). The result is an `EarlyExit` module fed by the same encoder; `.info["report"]` is
    its `ExitReport` on the test set (average steps, accuracy at the exit and at full $T$, spikes, neuron
    updates and synaptic operations in the steps used), `.info["calibration"]` the validation reports
    when the threshold was chosen. SEENN-II's reinforcement-learned policy is not implemented."""
    if threshold is not None:
        check_threshold(threshold, "confidence-early-exit")
    _readout(model)
    net = copy.deepcopy(model)
    history: list[dict] = []
    own = [tet_loss] if tet else []
    options = {"criterion": no_criterion} if tet else {}
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history, loss_terms=own,
              extra_terms=loss_terms, extra_hooks=hooks, **options)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history, loss_terms=own,
              extra_terms=loss_terms, extra_hooks=hooks, **options)
    info: dict = {}
    if threshold is None:
        cal = calibrate_threshold(net, data, encoder, thresholds, max_drop)
        threshold = cal.threshold
        info["calibration"] = cal
    alpha = check_threshold(threshold, "confidence-early-exit")
    report = early_exit_report(net, data.test_x, data.test_y, encoder, alpha)
    return Compressed(EarlyExit(net, alpha), encoder, history, {"threshold": alpha, "report": report, **info})


# --------------------------------------------------------------------------------------------- measures
# SEENN-I's exit measured on a model as it is, for the runner's spec tables (no training, no copy).

SWEEP_THRESHOLDS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 0.999, 0.9999)


def _exit_row(r: ExitReport) -> dict:
    row = {k: v for k, v in r.__dict__.items() if k != "steps_histogram"}
    row["drop"] = 100 * (r.accuracy_full - r.accuracy)  # accuracy points lost to the exit
    row["synops_vs_full"] = 100 * r.synops_per_sample / r.synops_full if r.synops_full else None  # % of full T
    return row


@register("early-exit-sweep", kind="measure", taxonomy="spike-reduction/dynamic-inference", keys=("li2023seenn",))
def early_exit_sweep(model: nn.Module, encoder: Encoder, data: Split,
                     thresholds: Sequence[float] = SWEEP_THRESHOLDS) -> dict:
    """SEENN-I early exit of `model` on the test images at each of `thresholds` (no training):
    `{"rows": [...]}`, one row per threshold with the fields of `ExitReport`, `drop` (points lost against
    full $T$) and `synops_vs_full` (% of the full-$T$ synaptic operations)."""
    reports = early_exit_reports(model, data.test_x, data.test_y, encoder, list(thresholds))
    return {"rows": [_exit_row(r) for r in reports]}


@register("early-exit-calibrated", kind="measure", taxonomy="spike-reduction/dynamic-inference", keys=("li2023seenn",))
def early_exit_calibrated(model: nn.Module, encoder: Encoder, data: Split,
                          thresholds: Sequence[float] = SWEEP_THRESHOLDS, max_drop: float = 0.5) -> dict:
    """SEENN-I early exit with its threshold chosen on the validation images (`calibrate_threshold`: the
    fewest average steps losing at most `max_drop` points there), then judged once on the test images: the
    chosen `threshold` and the test row's fields (as `early-exit-sweep`)."""
    chosen = calibrate_threshold(model, data, encoder, list(thresholds), max_drop).threshold
    (report,) = early_exit_reports(model, data.test_x, data.test_y, encoder, [chosen])
    return _exit_row(report)
