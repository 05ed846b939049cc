r"""Temporal coding: the time of few spikes, at most one per neuron, carries the information
(section 3.4 of [@xie2024efficient]).

In time-to-first-spike (TTFS) coding an input fires once, earlier when stronger (`encoding.Latency`),
and every neuron fires at most once per sample: after its first spike it stays silent for the rest
of the sample. Mostafa [@mostafa2018supervised] trains such networks with exact gradients of spike
times (non-leaky neurons with exponentially decaying synaptic current); S4NN
[@kheradpisheh2020temporal] uses non-leaky integrate-and-fire neurons and an approximate
backpropagation of spike latencies, with the first output neuron to fire giving the class.

**What we implement.** Two methods keep at most one spike per neuron:

* `s4nn` is S4NN itself (`S4NNet`, `FirstSpikeIF`, `S4NNLoss`, `ReviveSilent`): non-leaky neurons, latency
  input, the first output spike as the answer, and the paper's approximate temporal backpropagation put into
  the neurons' backward pass, trained by the one training loop with plain SGD (see `s4nn`).
* `time-to-first-spike` is our surrogate-gradient variant. `FirstSpikeLIF` is our LIF with a refractory
  period of the whole sample:

$$H[t] = \beta V[t-1] + X[t], \qquad S[t] = \Theta(H[t] - \theta)\,\Big(1 - \sum_{\tau<t} S[\tau]\Big), \qquad V[t] = H[t](1 - S[t]),$$

  so $\sum_t S[t] \le 1$ for every neuron, exactly. `time_to_first_spike` swaps every LIF of a trained
  network for it, feeds latency-coded input and trains with surrogate gradients through time and
  cross-entropy on the time-averaged readout: neither Mostafa's exact spike-time gradient nor S4NN's rule.
  It keeps the baselines' network and readout, so the comparison with rate coding isolates the code, not
  the learning rule.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder, Latency
from ..neurons import LIF, NeuronOutput, SpikingNeuron, _channel_view, _check_sequence
from ..registry import all_but, register
from ..spikes import hooked
from ..surrogate import ATan, Surrogate
from ..train import NONE, Hook, LossTerm, Step, TrainConfig, evaluate

__all__ = ["first_spike_lif", "FirstSpikeLIF", "time_to_first_spike", "max_spikes_per_neuron", "TTFS_TRAIN",
           "FirstSpikeIF", "S4NNet", "S4NNLoss", "ReviveSilent", "s4nn", "S4NN_TRAIN"]

TTFS_TRAIN = TrainConfig(epochs=4, lr=2e-3)  # default training of the single-spike network


def first_spike_lif(x: Tensor, tau: float | Tensor = 2.0, threshold: float | Tensor = 1.0, *,
                    surrogate: Surrogate | None = None) -> NeuronOutput:
    """LIF on `x: [T, B, ...]` where every neuron fires at most once (see the module docstring);
    `tau` and `threshold` are floats or per-channel `[C]` tensors. The reset is detached."""
    _check_sequence(x, "first_spike_lif")
    surrogate = surrogate or ATan()
    beta = _channel_view(1.0 - 1.0 / tau, x)
    theta = _channel_view(threshold, x)
    v = torch.zeros_like(x[0])
    fired = torch.zeros_like(x[0])  # 1 once the neuron has spiked
    spikes, membrane = [], []
    # --8<-- [start:first_spike]
    for t in range(x.shape[0]):
        h = beta * v + x[t]  # H[t] = beta V[t-1] + X[t]
        s = surrogate(h - theta) * (1 - fired)  # S[t] = Theta(H[t] - theta)(1 - fired)
        fired = fired + s.detach()
        v = h * (1 - s.detach())  # hard reset to 0
        # --8<-- [end:first_spike]
        spikes.append(s)
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


class FirstSpikeLIF(SpikingNeuron):
    """Module of `first_spike_lif`; `tau` and `threshold` are buffers (per channel when given as `[C]`)."""

    def __init__(self, tau: float | Tensor = 2.0, threshold: float | Tensor = 1.0,
                 surrogate: Surrogate | None = None) -> None:
        super().__init__()
        self.register_buffer("tau", torch.as_tensor(tau, dtype=torch.float32).clone())
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        if (self.tau < 1).any() or (self.threshold <= 0).any():
            raise ValueError(f"FirstSpikeLIF: need tau >= 1 and threshold > 0, got {tau!r}, {threshold!r}")
        self.surrogate = surrogate or ATan()

    @classmethod
    def from_lif(cls, lif: LIF) -> FirstSpikeLIF:
        if lif.reset != "hard" or lif.v_reset != 0.0:
            raise ValueError(f"FirstSpikeLIF.from_lif: needs a hard reset to 0, got reset={lif.reset!r}, "
                             f"v_reset={lif.v_reset!r}")
        return cls(lif.tau.detach(), lif.threshold.detach(), lif.surrogate)

    def run(self, x: Tensor) -> NeuronOutput:
        tau = self.tau if self.tau.dim() else float(self.tau)
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return first_spike_lif(x, tau, thr, surrogate=self.surrogate)


def _swap_neurons(net: nn.Module) -> int:
    swapped = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                setattr(parent, name, FirstSpikeLIF.from_lif(child))
                swapped += 1
    return swapped


@register("time-to-first-spike", kind="transform", taxonomy="spike-reduction/temporal-coding",
          keys=("kheradpisheh2020temporal", "mostafa2018supervised"),
          keeps=all_but("membrane-grid", "trained-threshold", "early-exit"),
          changes=("encoder=latency", "neuron=FirstSpikeLIF"), requires={"neuron": ("LIF",)})
def time_to_first_spike(model: nn.Module, data: Split, encoder: Encoder, *, T: int | None = None,
                        train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                        loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""Time-to-first-spike coding with at most one spike per neuron per sample
    [@kheradpisheh2020temporal; @mostafa2018supervised].

    Every LIF becomes a `FirstSpikeLIF` (same $\tau$ and $\theta$), the input becomes latency-coded
    (`encoding.Latency(T)`, `T` defaulting to the encoder's), and the network is trained (`train`,
    default `TTFS_TRAIN`) with surrogate gradients, then optionally fine-tuned (`finetune`, default none).
    Simplified learning rule: see the module docstring. `.info` has the accuracy before training (the
    weights as given, on the new code) and after."""
    net = copy.deepcopy(model)
    if _swap_neurons(net) == 0:
        raise TypeError(f"time-to-first-spike needs LIF neurons to swap; {type(model).__name__} has none")
    enc = Latency(T if T is not None else encoder.T)
    before = evaluate(net, data.test_x, data.test_y, enc)
    history: list[dict] = []
    run_phase(net, data, enc, budget(train, TTFS_TRAIN, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, enc, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, enc, history, {"T": enc.T, "accuracy_before_training": before,
                                          "accuracy": evaluate(net, data.test_x, data.test_y, enc)})


def max_spikes_per_neuron(model: nn.Module, inputs: Tensor) -> int:
    """The largest number of spikes any neuron emits for any sample of `inputs: [T, B, ...]`."""
    seen: list[int] = [0]
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    with hooked(neurons, lambda m, i, o: seen.append(int(o.sum(0).max()))), torch.no_grad():
        model(inputs)
    return max(seen)


@register("most-spikes", kind="measure", taxonomy="spike-reduction/temporal-coding", keys=("kheradpisheh2020temporal",))
def most_spikes(model: nn.Module, encoder: Encoder, data: Split, batch_size: int = 250) -> dict:
    """`{"max_spikes_per_neuron": n}`: the most spikes any neuron emits for any test image (encoded in
    batches with codes drawn from seed 1234, as the evaluation draws them); 1 for a time-to-first-spike code."""
    gen = torch.Generator().manual_seed(1234)
    x = data.test_x
    was = model.training
    model.eval()
    try:
        worst = max(max_spikes_per_neuron(model, encoder(x[i:i + batch_size], gen)) for i in range(0, len(x), batch_size))
    finally:
        model.train(was)
    return {"max_spikes_per_neuron": worst}


# --------------------------------------------------------------------------------------------- S4NN
# S4NN [@kheradpisheh2020temporal]: non-leaky integrate-and-fire neurons that fire at most once, on
# latency-coded input, trained on the output spike *times* with an approximate temporal backpropagation.
# The paper's defaults for MNIST (their Table and published script): 784-400-10, threshold 100 in both
# layers, t_max = 256 steps, weights drawn from U(0, 5) (hidden) and U(0, 48) (output), relative target
# times with gamma = 3, online SGD at learning rate 0.2, errors normalised per layer, silent hidden neurons
# re-drawn after each epoch.

S4NN_TRAIN = TrainConfig(epochs=10, batch_size=1, lr=0.2, schedule="constant", weight_decay=1e-6)  # the script: 100 epochs


class _FirstCrossing(torch.autograd.Function):
    """Non-leaky IF neurons firing at most once, with S4NN's backward pass.

    Forward: the potential is the running sum of the input, $V_j[t] = \\sum_{\\tau \\le t} z_j[\\tau]$, and
    neuron $j$ fires once, at the first $t_j$ with $V_j[t_j] > \\theta$ (silent: $t_j = T$).

    Backward: S4NN's approximation $\\partial t_j / \\partial V_j = -1$. The error of neuron $j$,
    $g_j = \\partial L / \\partial t_j$, is read from the gradient of its spike at $t_j$ (the next layer's
    backward, or `_FirstSpikeScore`'s, puts $-g_j$ there), normalised to unit L2 norm per sample and layer,
    and sent back as $\\partial L/\\partial z_j[\\tau] = -g_j$ for every $\\tau \\le t_j$: through the
    weights this gives $\\partial L/\\partial w_{ji} = -g_j [t_i \\le t_j]$ and, to the previous layer,
    $g_i = \\sum_j g_j w_{ji} [t_i \\le t_j]$. A silent hidden neuron passes no error (its time is never
    earlier than an output's); a silent output neuron gets its error at its nominal time $T$.
    """

    @staticmethod
    def forward(ctx, z: Tensor, threshold: float, readout: bool) -> tuple[Tensor, Tensor]:
        T = z.shape[0]
        v = z.cumsum(0)  # [T, B, N]  V[t] = sum_{tau <= t} z[tau]
        above = v > threshold  # strictly above, as in the published script
        t = torch.where(above.any(0), above.to(torch.uint8).argmax(0), torch.full_like(v[0], T, dtype=torch.long))
        steps = torch.arange(T, device=z.device).view(T, *([1] * (z.dim() - 1)))
        ctx.save_for_backward(t)
        ctx.readout = readout
        ctx.mark_non_differentiable(v)
        return (steps == t).to(z.dtype), v  # spikes [T, B, N], potential

    @staticmethod
    def backward(ctx, grad_s: Tensor, grad_v: Tensor):
        (t,) = ctx.saved_tensors
        T = grad_s.shape[0]
        # --8<-- [start:s4nn_backward]
        g = -grad_s.gather(0, t.clamp(max=T - 1).unsqueeze(0)).squeeze(0)  # g_j = dL/dt_j  [B, N]
        if not ctx.readout:
            g = g * (t < T)  # a silent hidden neuron passes no error
        norm = g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1)))
        g = torch.where(norm > 0, g / norm.clamp_min(1e-30), g)  # per-sample, per-layer normalisation
        steps = torch.arange(T, device=g.device).view(T, *([1] * g.dim()))
        grad_z = -g.unsqueeze(0) * (steps <= t).to(g.dtype)  # dt_j/dz_j[tau] = -1 for tau <= t_j
        # --8<-- [end:s4nn_backward]
        return grad_z, None, None


class _FirstSpikeScore(torch.autograd.Function):
    """Class scores from the output spikes: $-t_j$ for a neuron that fired (earliest wins); a silent one
    scores below every neuron that fired, ordered by its final potential (S4NN's rule when no output
    fires). Backward hands $\\partial L/\\partial t_j$ to `_FirstCrossing` at the firing step."""

    @staticmethod
    def forward(ctx, s: Tensor, v_end: Tensor, threshold: float) -> Tensor:
        T = s.shape[0]
        steps = torch.arange(T, device=s.device, dtype=s.dtype).view(T, *([1] * (s.dim() - 1)))
        fired = s.sum(0) > 0
        t = (s * steps).sum(0)
        at = torch.where(fired, t.long(), torch.full_like(t, T - 1, dtype=torch.long))
        ctx.save_for_backward(at)
        ctx.T = T
        tie = 0.5 * (1 + torch.tanh(v_end / threshold))  # in [0, 1]: a higher final potential ranks first
        return torch.where(fired, -t, -(T + 1) + tie)

    @staticmethod
    def backward(ctx, grad_score: Tensor):
        (at,) = ctx.saved_tensors
        grad_s = torch.zeros((ctx.T, *at.shape), dtype=grad_score.dtype, device=grad_score.device)
        grad_s.scatter_(0, at.unsqueeze(0), grad_score.unsqueeze(0))  # -dL/dt_j = dL/dscore_j at t_j
        return grad_s, None, None


class FirstSpikeIF(SpikingNeuron):
    """Non-leaky integrate-and-fire neuron that fires at most once, trained by S4NN's rule
    (`_FirstCrossing`); `readout=True` for the output layer, whose silent neurons still get an error."""

    leaky = False

    def __init__(self, threshold: float = 100.0, readout: bool = False) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"FirstSpikeIF: threshold must be > 0, got {threshold!r}")
        self.threshold = float(threshold)
        self.readout = readout

    def run(self, x: Tensor) -> NeuronOutput:
        _check_sequence(x, "FirstSpikeIF")
        spikes, v = _FirstCrossing.apply(x, self.threshold, self.readout)
        return NeuronOutput(spikes, v)


class S4NNet(nn.Module):
    """Fully connected S4NN: bias-free linear layers, each followed by `FirstSpikeIF` neurons; the class
    scores come from the output layer's first-spike times (`_FirstSpikeScore`). Input `[T, B, ...]`
    (flattened per step) -> scores `[B, classes]`."""

    def __init__(self, sizes: Sequence[int], threshold: float = 100.0, init: Sequence[float] = (5.0, 48.0),
                 seed: int = 0) -> None:
        super().__init__()
        if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"S4NNet: sizes must list at least two positive layer widths, got {list(sizes)!r}")
        if len(init) != len(sizes) - 1 or any(not b > 0 for b in init):
            raise ValueError(f"S4NNet: init needs one positive upper bound per weight layer ({len(sizes) - 1}), "
                             f"got {list(init)!r}")
        gen = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.neurons = nn.ModuleList(FirstSpikeIF(threshold, readout=i == len(sizes) - 2) for i in range(len(sizes) - 1))
        self.init = tuple(float(b) for b in init)
        self.threshold = float(threshold)
        with torch.no_grad():
            for fc, upper in zip(self.layers, self.init):
                fc.weight.copy_(torch.rand(fc.weight.shape, generator=gen) * upper)  # U(0, upper), as S4NN

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, "S4NNet")
        x = x.flatten(2)  # [T, B, F]
        if x.shape[2] != self.layers[0].in_features:
            raise ValueError(f"S4NNet: expected {self.layers[0].in_features} input features per step, got {x.shape[2]}")
        for fc, neuron in zip(self.layers, self.neurons):
            z = fc(x)  # [T, B, N]
            x = neuron(z)
        return _FirstSpikeScore.apply(x, z.detach().sum(0), self.threshold)  # [B, classes]


class S4NNLoss:
    r"""S4NN's temporal error with relative targets, as a `train.fit` criterion on the scores $-t$.

    With $t_{min}$ the earliest output spike of a sample: the label's target is $t_{min}$, every other
    output firing within $\gamma$ of it is pushed to $\min(t_{min} + \gamma, T)$, later ones keep their
    time; when no output fires, every target is $T$ and the label's $T - \gamma$. The loss is
    $\frac12\sum_j ((T_j - t_j)/T)^2$, averaged over the batch (the per-layer normalisation in the backward
    pass makes its scale irrelevant to the update)."""

    def __init__(self, T: int, gamma: int = 3) -> None:
        if gamma < 0:
            raise ValueError(f"S4NNLoss: gamma must be >= 0, got {gamma!r}")
        self.T, self.gamma = T, gamma

    def targets(self, t: Tensor, y: Tensor) -> Tensor:
        """Target times `[B, classes]` for output times `t` (silent = T) and labels `y`."""
        T, gamma = self.T, self.gamma
        t_min = t.min(1, keepdim=True).values  # [B, 1]
        target = torch.where(t - t_min < gamma, (t_min + gamma).clamp(max=T), t)
        target = target.scatter(1, y.view(-1, 1), t_min)
        silent = (t_min == T).expand_as(t)
        none_fired = torch.full_like(t, float(T)).scatter(1, y.view(-1, 1), float(T - gamma))
        return torch.where(silent, none_fired, target)

    def __call__(self, scores: Tensor, y: Tensor) -> Tensor:
        over = (-scores - self.T).clamp(min=0).detach()  # a silent output scores in (-T-1, -T): its time is T
        t = -scores - over  # [B, classes], gradient -1 with respect to the score
        target = self.targets(t.detach(), y)
        return 0.5 * (((target - t) / self.T) ** 2).sum(1).mean()


class ReviveSilent(Hook):
    """S4NN's dead-neuron rule: after each epoch but the last, every hidden neuron that fired for fewer than
    `fraction` of the training samples gets fresh weights from its layer's initial distribution. The script
    measures an epoch's accuracy before the re-draw; `fit` measures it after its hooks, so here an epoch's
    test accuracy includes the re-drawn neurons. The last epoch re-draws nothing, so the trained network is
    never handed back with untrained neurons in it. The draws come from a stream of their own (`seed`), not
    the initialisation's."""

    def __init__(self, net: S4NNet, samples: int, epochs: int, fraction: float = 0.001, seed: int = 0) -> None:
        self.net, self.samples, self.epochs, self.fraction = net, samples, epochs, fraction
        self.gen = torch.Generator().manual_seed(1_000_003 + seed)  # not the stream that drew the initial weights
        self.counts = [torch.zeros(n.out_features) for n in net.layers[:-1]]
        self.revived: list[int] = []

    def after_step(self, model: nn.Module, step: Step) -> None:
        for i, count in enumerate(self.counts):  # the spikes of this step's forward pass, [T, B, N] each
            count += sum(s.detach().sum((0, 1)) for s in step.spikes[f"neurons.{i}"])

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        revived = 0
        with torch.no_grad():
            for count, fc, upper in zip(self.counts, self.net.layers[:-1], self.net.init):
                dead = (count < self.fraction * self.samples).nonzero().flatten()
                if len(dead) and epoch < self.epochs - 1:
                    fc.weight[dead] = torch.rand(len(dead), fc.in_features, generator=self.gen) * upper
                    revived += len(dead)
                count.zero_()
        self.revived.append(revived)


@register("s4nn", kind="transform", taxonomy="spike-reduction/temporal-coding", keys=("kheradpisheh2020temporal",),
          keeps=(), changes=("architecture", "model=S4NNet", "encoder=latency", "neuron=FirstSpikeIF", "T"))
def s4nn(model: nn.Module, data: Split, encoder: Encoder, *, T: int = 256, hidden: Sequence[int] = (400,),
         threshold: float = 100.0, init: Sequence[float] = (5.0, 48.0), gamma: int = 3, seed: int = 0,
         train: TrainConfig | None = None, finetune: TrainConfig | None = None,
         loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""S4NN [@kheradpisheh2020temporal]: a fully connected network of non-leaky integrate-and-fire neurons
    that fire at most once, on latency-coded input, trained by temporal backpropagation of spike times.

    A new network `S4NNet` with layer widths (input features, `*hidden`, classes) is drawn from S4NN's
    initialisation (`init`: upper bounds of the uniform weights per layer, seeded by `seed`) and trained
    (`train`, default `S4NN_TRAIN`: plain SGD, one sample per step, learning rate 0.2, the paper's
    settings) on `encoding.Latency(T)` input with `S4NNLoss(T, gamma)` as the criterion and
    `ReviveSilent` after each epoch; then optionally fine-tuned (`finetune`, default none). The given
    `model` is what the result replaces, not a starting point: S4NN trains from scratch, so only the
    task (input size, classes) carries over. `.info` has the accuracy, `T` and how many silent hidden
    neurons were re-drawn after each epoch."""
    classes = int(max(data.train_y.max(), data.test_y.max())) + 1
    sizes = (int(data.train_x[0].numel()), *(int(h) for h in hidden), classes)
    net = S4NNet(sizes, threshold, init, seed)
    enc = Latency(T)
    config = budget(train, S4NN_TRAIN, "train")
    revive = ReviveSilent(net, len(data.train_y), config.epochs, seed=seed)
    history: list[dict] = []
    options = {"criterion": S4NNLoss(T, gamma), "optimizer": "sgd"}
    run_phase(net, data, enc, config, "train", history, hooks=[revive],
              extra_terms=loss_terms, extra_hooks=hooks, **options)
    run_phase(net, data, enc, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks, **options)
    return Compressed(net, enc, history, {"T": T, "sizes": sizes, "replaces": type(model).__name__,
                                          "revived_per_epoch": revive.revived,
                                          "accuracy": evaluate(net, data.test_x, data.test_y, enc)})
