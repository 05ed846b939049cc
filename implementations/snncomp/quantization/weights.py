r"""Weight quantization: low-bit or shared weights (section 3.2 of [@xie2024efficient]).

Every method here is a registered transform with the contract of `snncomp.compress`:

    fn(model, data, encoder, *, bits=4, per_channel=True, train=None, finetune=None, loss_terms=(), hooks=())
        -> Compressed

**What is quantized.** The weights of every `nn.Conv2d` and `nn.Linear`, readout included. Biases,
batch normalisation and neuron parameters stay FP32 and are counted at 32 bits by
`metrics.deployed_bits` (BatchNorm folds into the convolution's bias and the neuron's threshold at
deployment; `membrane_potential.fold_batchnorm` does that fold). A pruning mask on the input is kept:
the quantizer is stacked after it, so $\hat w = Q(\theta \odot m)$ and pruned weights stay zero.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..metrics import weight_layers
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, TrainConfig
from .quantizers import FakeQuantize, LSQQuantizer, MinMaxFakeQuantize, check_bits, minmax_scale, weight_quantizers
from .sharing import ADMMQuantHook, Codebook, PowerOfTwoQuantize, project_to_levels

__all__ = ["QAT", "LSQ_TRAIN", "LSQ_MOMENTUM", "uniform_ptq", "uniform_qat", "lsq", "kmeans_sharing",
           "admm_quantization"]

QAT = TrainConfig(epochs=2, lr=5e-4)  # default quantization-aware budget on a trained model (Adam)
# LSQ's own recipe: SGD with momentum 0.9 and cosine decay, from lr 0.01 (the paper's starting rate when it
# fine-tunes from a full-precision network); the epoch count is ours
LSQ_TRAIN = TrainConfig(epochs=2, lr=1e-2)
LSQ_MOMENTUM = 0.9

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


def _start(model: nn.Module, bits: int, where: str) -> tuple[nn.Module, dict[str, nn.Module]]:
    check_bits(bits, where)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where}: needs an nn.Module, got {type(model).__name__}")
    net = copy.deepcopy(model)
    layers = weight_layers(net)
    if not layers:
        raise TypeError(f"{where}: needs nn.Conv2d or nn.Linear layers; {type(model).__name__} has none")
    return net, layers


def _minmax(bits: int, per_channel: bool):
    return lambda n, w: FakeQuantize(minmax_scale(w, bits, per_channel), bits, per_channel=per_channel, where=n)


@register("uniform-ptq", kind="transform", taxonomy="quantization/weights", keys=("jacob2018quantization",),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def uniform_ptq(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 8, per_channel: bool = True,
                train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Post-training uniform weight quantization: symmetric min-max step, no retraining by default.

    $s = \max|w| / (2^{b-1} - 1)$ per output channel (or per tensor), $\hat w = s\,\mathrm{clamp}(\lfloor w/s
    \rceil, -2^{b-1}, 2^{b-1}-1)$ [@jacob2018quantization]. `train` (default none) trains before the
    quantizer is set; `finetune` (default none) trains after it with the STE, the step kept fixed.
    """
    net, layers = _start(model, bits, "uniform_ptq")
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    weight_quantizers(layers, _minmax(bits, per_channel))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "per_channel": per_channel})


@register("uniform-qat", kind="transform", taxonomy="quantization/weights",
          keys=("jacob2018quantization", "bengio2013estimating"),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def uniform_qat(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, per_channel: bool = True,
                train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Quantization-aware training: train through the fake quantizer with the straight-through estimator.

    As in [@jacob2018quantization], the weight range is taken from the current weights at every step: a
    `MinMaxFakeQuantize` recomputes the min-max step $s = \max|w|/q_{max}$ (per output channel or per
    tensor) from the weights it quantizes at every forward pass, in training and after it, so the deployed
    grid is the one the last training step used (for the same weights). `train` (default `QAT`) updates the
    FP32 weights behind the quantizer with the STE gradient [@bengio2013estimating]; `finetune` (default
    none) trains further the same way. Simplifications against [@jacob2018quantization]: a symmetric range
    ($\max|w|$, zero point 0) where the paper uses the asymmetric $[\min w, \max w]$ with a zero point, no
    activation quantization (spikes are already one bit), no BatchNorm folding during training, and Adam.
    """
    net, layers = _start(model, bits, "uniform_qat")
    history: list[dict] = []
    weight_quantizers(layers, lambda n, w: MinMaxFakeQuantize(w, bits, per_channel=per_channel, where=n))
    run_phase(net, data, encoder, budget(train, QAT, "train"), "qat", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "per_channel": per_channel})


@register("lsq", kind="transform", taxonomy="quantization/weights", keys=("esser2020learned",),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def lsq(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, per_channel: bool = False,
        first_last_bits: int | None = 8, optimizer: str = "sgd", momentum: float = LSQ_MOMENTUM,
        train: TrainConfig | None = None, finetune: TrainConfig | None = None,
        loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Learned step size quantization: weights and their quantizer steps trained together [@esser2020learned].

    Each layer (or output channel) gets a step $s$, an `nn.Parameter` starting at
    $2\langle|w|\rangle/\sqrt{Q_P}$ whose gradient is scaled by $g = 1/\sqrt{N_W Q_P}$. As in the paper, the
    first and the last (readout) layer stay at `first_last_bits` (8; `None` quantizes them at `bits` too),
    and `train` (default `LSQ_TRAIN`) trains weights and steps with SGD with momentum 0.9 and cosine decay
    (`optimizer="adam"` is offered for comparison: Adam divides every gradient by its running scale, so it
    undoes $g$). We quantize weights only, where the paper also quantizes activations, and train for far
    fewer epochs without the paper's weight decay; `finetune` (default none) trains further.
    """
    net, layers = _start(model, bits, "lsq")
    names = list(layers)
    ends = {names[0], names[-1]} if first_last_bits is not None else set()
    if first_last_bits is not None:
        check_bits(first_last_bits, "lsq")
    widths = {n: (first_last_bits if n in ends else bits) for n in names}
    opts = {"optimizer": optimizer, "momentum": momentum if optimizer == "sgd" else 0.0}
    history: list[dict] = []
    weight_quantizers(layers, lambda n, w: LSQQuantizer(w, widths[n], per_channel=per_channel, where=n))
    run_phase(net, data, encoder, budget(train, LSQ_TRAIN, "train"), "lsq", history,
              extra_terms=loss_terms, extra_hooks=hooks, **opts)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks, **opts)
    return Compressed(net, encoder, history, {"bits": bits, "per_channel": per_channel, "layer_bits": widths,
                                              "optimizer": optimizer, "momentum": opts["momentum"]})


@register("kmeans-sharing", kind="transform", taxonomy="quantization/weights", keys=("han2016deep",),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def kmeans_sharing(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4,
                   train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                   loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Weight sharing by k-means: $2^b$ shared values per layer, centroids fine-tuned [@han2016deep].

    Each layer's non-zero weights are clustered by 1-D k-means (linear initialisation) into $2^b$
    centroids; the layer stores a $b$-bit index per weight and the FP32 codebook. `finetune` (default
    `QAT`) trains the centroids, each by the summed gradient of its weights, as Deep Compression does
    after pruning; `train` (default none) trains before the clustering. Huffman coding, the paper's third
    stage, is not applied.
    """
    net, layers = _start(model, bits, "kmeans_sharing")
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    weight_quantizers(layers, lambda n, w: Codebook(w, bits, where=n))
    run_phase(net, data, encoder, budget(finetune, QAT, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "clusters": 2**bits})


@register("admm-quantization", kind="transform", taxonomy="quantization/weights",
          keys=("leng2018extremely", "deng2021comprehensive"),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def admm_quantization(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 2, rho: float = 1e-3,
                      every: int = 10, max_exponent: int | None = None, train: TrainConfig | None = None,
                      finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""ADMM quantization: train towards zero-or-power-of-two weights, then project [@leng2018extremely].

    The constraint set is Leng et al.'s $\mathcal C = \alpha\{0, \pm 2^0, \dots, \pm 2^K\}$ per layer: ternary
    $\alpha\{0, \pm 1\}$ at 2 bits and, at $b \ge 3$ bits, the largest such set that fits $b$ bits
    (`sharing.power_of_two_levels`; `max_exponent` picks $K$). During `train` (default `QAT`) the loss carries
    $\frac{\rho}{2}\|W - Z + U\|^2$ and every `every` steps $Z \leftarrow \Pi_{\mathcal C}(W + U)$,
    $U \leftarrow U + W - Z$ (`sharing.ADMMQuantHook`); at the end $W$ itself is projected on the same set
    (a `PowerOfTwoQuantize` with the layer's $\alpha$ keeps it there), and `finetune` (default none) trains
    through it with the STE. Where we differ: the $W$ step is our optimiser (Adam) on the penalised loss
    instead of the paper's extragradient step, and the mapping from `bits` to $K$ is ours.
    [@deng2021comprehensive] applies the same splitting to SNNs.
    """
    net, layers = _start(model, bits, "admm_quantization")
    if bits < 2:
        raise ValueError(f"admm_quantization: bits must be >= 2 (binary weights: binary_weights), got {bits}")
    history: list[dict] = []
    admm = ADMMQuantHook(layers, bits, rho, every, max_exponent)
    run_phase(net, data, encoder, budget(train, QAT, "train"), "admm", history, loss_terms=[admm.penalty],
              hooks=[admm], extra_terms=loss_terms, extra_hooks=hooks)
    with torch.no_grad():  # the final projection of W alone on the same set
        alphas = {n: project_to_levels(m.weight.detach(), bits, max_exponent=max_exponent)[1].abs().clamp(min=1e-12)
                  for n, m in layers.items()}
    weight_quantizers(layers, lambda n, w: PowerOfTwoQuantize(alphas[n], bits, max_exponent=max_exponent, where=n))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "rho": rho, "max_exponent": max_exponent,
                                              "alpha": {n: float(a) for n, a in alphas.items()}})
