r"""Importance scores: pure functions from a model to a score per weight or per unit.

Low scores are cut first. Weight scores feed the mask builders of `masks`; unit scores (one per
channel of a `ConvNet` block or neuron of an `MLP` block) feed `units.select_units`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import spikes as spike_rec
from ..data.encoding import Encoder
from ..models import MLP, ConvBlock, ConvNet, block_neuron
from ..train import eval_batches

__all__ = ["magnitude_scores", "bn_scale_scores", "firing_rate_scores", "check_units_model"]


def magnitude_scores(layers: dict[str, nn.Module]) -> dict[str, Tensor]:
    """$|w|$ for every weight [@han2015learning]."""
    return {n: m.weight.detach().abs() for n, m in layers.items()}


def check_units_model(model: nn.Module, where: str) -> None:
    """A `TypeError` naming `where` unless `model` is a `ConvNet` or an `MLP` (the models with units)."""
    if not isinstance(model, (ConvNet, MLP)):
        raise TypeError(f"{where} supports ConvNet and MLP models, got {type(model).__name__}")


def bn_scale_scores(model: ConvNet) -> dict[int, Tensor]:
    r"""Neuron-state-aware channel importance of each conv block: $|\gamma_c| / \theta_c$ [@liu2017learning].
    Dense blocks after the convolutions (no BatchNorm) get no scores and are left whole.

    The BatchNorm scale $\gamma_c$ multiplies the normalised input current of channel $c$; the
    membrane reaches threshold $\theta_c$ in proportion to $\gamma_c/\theta_c$, so a small ratio
    means the channel's neurons are barely driven by their input.
    """
    if not isinstance(model, ConvNet):
        raise TypeError(f"BatchNorm-scale scores need a ConvNet (BatchNorm channels), got {type(model).__name__}")
    out = {}
    for i, b in enumerate(model.blocks):
        if not isinstance(b, ConvBlock):
            continue
        gamma = b.bn.weight.detach().abs()  # [C]
        theta = getattr(b.neuron, "threshold", None)
        theta = theta.detach() if isinstance(theta, Tensor) else torch.ones_like(gamma)
        out[i] = gamma / theta  # |gamma_c| / theta_c, [C]
    return out


def firing_rate_scores(model: nn.Module, x: Tensor, encoder: Encoder, batch_size: int = 250,
                       seed: int = 0) -> dict[int, Tensor]:
    """Mean spikes per step of each channel (ConvNet) or neuron (MLP) of every block on images `x`
    [@li2024efficient]: units that rarely fire carry little information to the next layer."""
    check_units_model(model, "firing-rate scores")
    sums: dict[int, Tensor] = {}
    counts: dict[int, int] = {}
    # each block's spiking neuron by module name (also the one behind TA-SNN's attention)
    by_id = {id(block_neuron(b)): i for i, b in enumerate(model.blocks)}
    names = {n: by_id[id(m)] for n, m in model.named_modules() if id(m) in by_id}
    for _, inputs in eval_batches(model, x, encoder, batch_size, seed):
        with spike_rec.record(model) as rec:
            model(inputs)
        for name, outs in rec.items():
            i = names[name]
            s = outs[0]  # [T, B, C, ...]
            sums[i] = sums.get(i, 0) + s.transpose(0, 2).flatten(1).sum(1)  # spikes of each channel, [C]
            counts[i] = counts.get(i, 0) + s.numel() // s.shape[2]  # T * B * positions per channel
    if not sums:
        raise TypeError(f"firing-rate scores need spiking neurons; {type(model).__name__} has none")
    return {i: v / counts[i] for i, v in sums.items()}  # rate_c = spikes_c / (T B H W)
