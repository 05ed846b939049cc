r"""Membrane-potential quantization: low-bit neuron state (section 3.2 of [@xie2024efficient]).

The membrane potential is state: a chip stores it between steps for every neuron, and rounding it
changes the neuron's trajectory, not only its storage. A `MembraneQuantizer` set on a neuron (as its
submodule `membrane_quantizer`, on the copy a transform returns) rounds the leaked potential the neuron
carries to the next step onto a grid of step $s$:

$$H[t] = Q(\beta V[t-1]) + X[t], \qquad S[t] = \Theta(H[t] - \theta), \qquad V[t] = H[t](1 - S[t])$$

so the stored state takes $2^b$ values while the accumulator $H$ (input plus state) is compared with the
threshold at full width, as in MINT's code. Two methods:

* `q_spinn`: the state on its own grid, a fixed-point format or $s = \theta / 2^{b-1}$ (the stored range is
  $[-\theta, \theta)$), truncated, rounded to nearest or stochastically, optionally with quantized weights,
  post-training or quantization-aware [@putra2021qspinn];
* `mint`: weights, bias, state and threshold of a layer on **one** integer grid with a shared step
  [@yin2024mint], so an integer chip accumulates integer weights into an integer potential and compares
  it with an integer threshold with no rescaling multiplier; `integer.export` runs exactly that.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..metrics import weight_layers
from ..neurons import AdaptiveLIF, SpikingNeuron
from ..models import block_neuron
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, TrainConfig
from .quantizers import (FakeQuantize, FixedPointQuantize, GridInput, MembraneQuantizer, MinMaxFakeQuantize,
                         add_quantizer, check_bits, fixed_point_step, minmax_scale, power_of_two, qrange, quantizer_of,
                         weight_quantizers)
from .weights import QAT

__all__ = ["BIAS_BITS", "fold_batchnorm", "spiking_blocks", "set_membrane_quantizer", "shared_step", "q_spinn", "mint"]

BIAS_BITS = 16  # the folded bias on the shared grid: an accumulator-width constant (our choice)

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    r"""Fold every block's `bn` into its `conv` in place: $w' = w\,\gamma/\sigma$, $b' = \beta_{bn} - \gamma\mu/\sigma$
    ($\sigma = \sqrt{\mathrm{var} + \epsilon}$, running statistics), and replace `bn` by `nn.Identity`; the
    model computes the same function in eval mode. A pruning mask on the conv is kept (a per-channel
    factor keeps its zeros); a quantizer already there is an error."""
    for name, block in model.named_modules():
        conv, bn = getattr(block, "conv", None), getattr(block, "bn", None)
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
            continue
        if quantizer_of(conv) is not None:
            raise ValueError(f"{name}.conv: fold batch normalisation before quantizing the weights")
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # gamma / sigma
        w = conv.parametrizations.weight.original if parametrize.is_parametrized(conv, "weight") else conv.weight
        w.mul_(g.view(-1, 1, 1, 1))
        b = bn.bias - g * bn.running_mean + (g * conv.bias if conv.bias is not None else 0)
        conv.bias = nn.Parameter(b.detach().clone())
        block.bn = nn.Identity()
    return model


def spiking_blocks(model: nn.Module, *, attended: bool = False) -> dict[str, tuple[nn.Module, SpikingNeuron]]:
    """`{block name: (its conv or linear layer, its neuron)}` for every block with a `neuron`; with
    `attended`, also the neuron behind TA-SNN's attention (which rescales the current before it)."""
    out = {}
    for name, block in model.named_modules():
        neuron = block_neuron(block) if attended else getattr(block, "neuron", None)
        layer = getattr(block, "conv", None) or getattr(block, "fc", None)
        if isinstance(neuron, SpikingNeuron) and isinstance(layer, (nn.Conv2d, nn.Linear)):
            out[name] = (layer, neuron)
    return out


def set_membrane_quantizer(name: str, neuron: nn.Module, quantizer: MembraneQuantizer) -> None:
    """Set `quantizer` on `neuron` (LIF, IF or PLIF); any other neuron is an error naming the layer."""
    if not isinstance(neuron, SpikingNeuron) or isinstance(neuron, AdaptiveLIF):
        raise TypeError(f"{name}: membrane quantization needs a LIF, IF or PLIF neuron, got {type(neuron).__name__}")
    neuron.membrane_quantizer = quantizer


def _threshold(neuron: nn.Module) -> float:
    t = neuron.threshold
    return float(t.detach().max()) if isinstance(t, Tensor) else float(t)


@register("q-spinn", kind="transform", taxonomy="quantization/membrane-potential", keys=("putra2021qspinn",),
          leaves=("membrane-grid", "weight-grid"), keeps=all_but("membrane-grid", "early-exit"),
          requires={"neuron": ("LIF", "IF", "PLIF")})
def q_spinn(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, weight_bits: int | None = None,
            rounding: str = "nearest", fraction_bits: int | None = None, weight_fraction_bits: int | None = None,
            seed: int = 0, train: TrainConfig | None = None, finetune: TrainConfig | None = None,
            loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Membrane potential (and optionally weights) on few bits, post-training or in training [@putra2021qspinn].

    Every spiking layer keeps its state on a `bits`-bit grid, rounded by `rounding`: to nearest, truncated,
    or stochastically (`"stochastic"`, seeded with `seed`), the three schemes the paper compares. The grid is
    the fixed-point format with `fraction_bits` $f$ bits after the point (step $2^{-f}$, $b - 1 - f$ integer
    bits) or, by default, step $\theta / 2^{b-1}$ (range $[-\theta, \theta)$, our choice). `weight_bits` adds
    weights on `weight_bits` bits, rounded the same way: fixed point with `weight_fraction_bits` fraction
    bits, or, by default, a per-channel min-max step recomputed from the weights (`MinMaxFakeQuantize`,
    round to nearest only). With the default budgets it is post-training quantization; `train` trains through
    the quantizers (in-training quantization). Where we differ: Q-SpiNN also quantizes the neuron parameters
    and works on an unsupervised STDP network, and it explores candidates over precisions, rounding schemes
    and both schemes and returns a Pareto-optimal one; the search is left to the caller (the notebook sweeps
    the bit widths).
    """
    check_bits(bits, "q_spinn")
    if weight_fraction_bits is not None and weight_bits is None:
        raise ValueError("q_spinn: weight_fraction_bits needs weight_bits")
    net = copy.deepcopy(model)
    blocks = spiking_blocks(net, attended=True)
    if not blocks:
        raise TypeError(f"q_spinn: {type(model).__name__} has no block with a spiking neuron")
    for i, (name, (_, neuron)) in enumerate(blocks.items()):
        s = fixed_point_step(fraction_bits) if fraction_bits is not None else _threshold(neuron) / 2 ** (bits - 1)
        set_membrane_quantizer(name, neuron, MembraneQuantizer(s, bits, rounding=rounding, seed=seed + i,
                                                               where=f"{name}.neuron"))
    if weight_bits is not None:
        check_bits(weight_bits, "q_spinn")
        if weight_fraction_bits is not None:
            make = lambda n, w: FixedPointQuantize(w, weight_bits, weight_fraction_bits, rounding=rounding,  # noqa: E731
                                                   seed=seed, where=n)
        elif rounding != "nearest":
            raise ValueError("q_spinn: truncated or stochastic weights need the fixed-point format "
                             "(weight_fraction_bits)")
        else:
            make = lambda n, w: MinMaxFakeQuantize(w, weight_bits, per_channel=True, where=n)  # noqa: E731
        weight_quantizers(weight_layers(net), make)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"membrane_bits": bits, "weight_bits": weight_bits,
                                              "rounding": rounding, "fraction_bits": fraction_bits,
                                              "weight_fraction_bits": weight_fraction_bits})


def shared_step(w: Tensor, bits: int) -> Tensor:
    r"""The power-of-two step for `w` at `bits`: of $2^{\lfloor \log_2 m \rfloor}$ and $2^{\lceil \log_2 m
    \rceil}$ ($m = \max|w| / q_{max}$), the one with the smaller squared quantization error on MINT's
    symmetric range $\pm q_{max}$."""
    m = minmax_scale(w, bits, per_channel=False)
    qmin, qmax = qrange(bits, symmetric=True)
    best, err = None, math.inf
    for s in (power_of_two(m) / 2, power_of_two(m)):
        e = float(((torch.round(w / s).clamp(qmin, qmax) * s - w) ** 2).sum())
        if e < err:
            best, err = s, e
    return best


@register("mint", kind="transform", taxonomy="quantization/membrane-potential", keys=("yin2024mint",),
          leaves=("weight-grid", "membrane-grid"),
          keeps=all_but("weight-grid", "membrane-grid", "trained-threshold", "attention", "early-exit"),
          requires={"neuron": ("LIF", "IF")})
def mint(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, membrane_bits: int = 4,
         input_bits: int = 8, train: TrainConfig | None = None, finetune: TrainConfig | None = None,
         loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Weights and membrane potential on one integer grid per layer with a shared step, trained
    quantization-aware, so inference needs no multiplier [@yin2024mint].

    Batch normalisation is folded into the convolution; each layer's weights take a per-tensor step $s$,
    and its folded bias ($16$ bits), the neuron's stored potential (`membrane_bits`) and its threshold lie on
    the same grid. As in MINT's code, weights and potential are clamped to the symmetric range
    $\pm(2^{b-1} - 1)$, the clamped potential passes no gradient, and the threshold is compared as
    $H \ge \lceil\theta/s\rceil s$: MINT trains with the float $\theta$ and uses $\lceil\theta/s\rceil$ at
    inference, which gives the same spikes whenever $H$ lies on the grid (every layer fed spikes). `train`
    (default `QAT`) trains through the quantizers with the STE. A direct (analog) input is put on an 8-bit
    grid (`GridInput`). Where we differ from MINT's code: the step is fixed (a power of two, chosen by
    `shared_step`) where MINT learns it (initialised as LSQ's); there is no $\tanh$ before the quantizer;
    the first layer's state is quantized too (MINT keeps the direct-input layer in full precision); the
    folded bias is kept on the grid where MINT's convolutions have none; Adam, not MINT's SGD schedule.
    """
    check_bits(bits, "mint")
    check_bits(membrane_bits, "mint")
    net = fold_batchnorm(copy.deepcopy(model))
    blocks = spiking_blocks(net)
    if not blocks:
        raise TypeError(f"mint: {type(model).__name__} has no block with a spiking neuron")
    steps = {}
    layers = {name: layer for name, (layer, _) in blocks.items()}
    head = getattr(net, "head", None)
    if isinstance(head, nn.Linear):
        layers["head"] = head
    for name, layer in layers.items():
        s = shared_step(layer.weight.detach(), bits)
        steps[name] = float(s)
        add_quantizer(layer, FakeQuantize(s, bits, symmetric=True, where=f"{name} weight"))
        if layer.bias is not None:
            add_quantizer(layer, FakeQuantize(s, BIAS_BITS, where=f"{name} bias"), "bias")
        if name in blocks:
            neuron = blocks[name][1]
            set_membrane_quantizer(name, neuron, MembraneQuantizer(s, membrane_bits, symmetric=True,
                                                                   saturate_grad=False, where=f"{name}.neuron"))
            k = torch.ceil(neuron.threshold / s).clamp(min=1)  # integer threshold ceil(theta / s), at least 1
            neuron.threshold.copy_(k * s)
    if not encoder.binary:
        encoder = GridInput(encoder.T, inner=encoder, bits=input_bits)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, QAT, "train"), "qat", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "membrane_bits": membrane_bits, "steps": steps})
