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
from ..encoding import Encoder
from ..metrics import weight_layers
from ..registry import register
from ..train import Hook, LossTerm, TrainConfig
from .quantizers import FakeQuantize, LSQQuantizer, check_bits, minmax_scale, weight_quantizers
from .sharing import ADMMQuantHook, Codebook

__all__ = ["QAT", "NONE", "uniform_ptq", "uniform_qat", "lsq", "kmeans_sharing", "admm_quantization"]

QAT = TrainConfig(epochs=2, lr=5e-4)  # default quantization-aware budget on a trained model
NONE = TrainConfig(epochs=0)

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


@register("uniform-ptq", kind="transform", taxonomy="quantization/weights", keys=("jacob2018quantization",))
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
          keys=("jacob2018quantization", "bengio2013estimating"))
def uniform_qat(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, per_channel: bool = True,
                train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Quantization-aware training: train through the fake quantizer with the straight-through estimator.

    The min-max steps of the input's weights are fixed, then `train` (default `QAT`) updates the FP32
    weights behind the quantizer with the STE gradient [@bengio2013estimating]; the steps are
    recalibrated to the trained weights before `finetune` (default none). The simplification against
    [@jacob2018quantization]: no activation quantization (spikes are already one bit) and no BatchNorm
    folding during training.
    """
    net, layers = _start(model, bits, "uniform_qat")
    history: list[dict] = []
    weight_quantizers(layers, _minmax(bits, per_channel))
    run_phase(net, data, encoder, budget(train, QAT, "train"), "qat", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    with torch.no_grad():
        for m in layers.values():
            q = m.parametrizations.weight[-1]
            q.scale.copy_(minmax_scale(_raw(m), bits, per_channel))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "per_channel": per_channel})


def _raw(module: nn.Module) -> torch.Tensor:
    """The weight before the quantizer: the stored tensor through every parametrization but the last."""
    plist = module.parametrizations.weight
    w = plist.original
    for p in list(plist)[:-1]:
        w = p(w)
    return w.detach()


@register("lsq", kind="transform", taxonomy="quantization/weights", keys=("esser2020learned",))
def lsq(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 4, per_channel: bool = False,
        train: TrainConfig | None = None, finetune: TrainConfig | None = None,
        loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Learned step size quantization: weights and their quantizer steps trained together [@esser2020learned].

    Each layer (or output channel) gets a step $s$, an `nn.Parameter` starting at
    $2\langle|w|\rangle/\sqrt{Q_P}$ whose gradient is scaled by $1/\sqrt{N_W Q_P}$; `train` (default
    `QAT`) trains weights and steps through the STE. We quantize weights only, where the paper also
    quantizes activations; `finetune` (default none) trains further.
    """
    net, layers = _start(model, bits, "lsq")
    history: list[dict] = []
    weight_quantizers(layers, lambda n, w: LSQQuantizer(w, bits, per_channel=per_channel, where=n))
    run_phase(net, data, encoder, budget(train, QAT, "train"), "lsq", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "per_channel": per_channel})


@register("kmeans-sharing", kind="transform", taxonomy="quantization/weights", keys=("han2016deep",))
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
          keys=("leng2018extremely", "deng2021comprehensive"))
def admm_quantization(model: nn.Module, data: Split, encoder: Encoder, *, bits: int = 2, rho: float = 1e-3,
                      every: int = 10, train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                      loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""ADMM quantization: train towards the nearest scaled low-bit weights, then project [@leng2018extremely].

    During `train` (default `QAT`) the loss carries $\frac{\rho}{2}\|W - Z + U\|^2$ and every `every`
    steps $Z \leftarrow \Pi(W + U)$, $U \leftarrow U + W - Z$ (`sharing.ADMMQuantHook`), with
    $\Pi$ the projection on $\{\alpha q: |q| \le 2^{b-1} - 1\}$ per layer; then the weights are
    projected for good, a `FakeQuantize` with step $\alpha$ is set, and `finetune` (default none)
    trains through it with the STE. [@deng2021comprehensive] applies the same splitting to SNNs.
    """
    net, layers = _start(model, bits, "admm_quantization")
    if bits < 2:
        raise ValueError(f"admm_quantization: bits must be >= 2 (binary weights: binary_weights), got {bits}")
    history: list[dict] = []
    admm = ADMMQuantHook(layers, bits, rho, every)
    run_phase(net, data, encoder, budget(train, QAT, "train"), "admm", history, loss_terms=[admm.penalty],
              hooks=[admm], extra_terms=loss_terms, extra_hooks=hooks)
    admm.update_z()
    with torch.no_grad():
        alphas = {n: admm.alpha[n].abs().clamp(min=1e-12) for n in layers}
    weight_quantizers(layers, lambda n, w: FakeQuantize(alphas[n], bits, where=n))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": bits, "rho": rho})
