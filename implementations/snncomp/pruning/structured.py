r"""Structured pruning: removing whole channels or neurons (section 3.1 of [@xie2024efficient]).

The methods score units, keep the best with `units.select_units` and remove the rest physically with
`units.remove_units`, which also removes the neuron state that belongs to them; `sparsity` is the
fraction of units removed. They follow the transform contract of `snncomp.compress`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

from torch import Tensor, nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..models import ConvNet
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, Step, TrainConfig
from .masks import check_sparsity
from .scores import bn_scale_scores, check_units_model, firing_rate_scores
from .units import remove_units, select_units, units_of
from .unstructured import PRUNE_FINETUNE

__all__ = ["bn_scale_l1", "channel_slimming", "activity_pruning"]


def _info(model: nn.Module, pruned: nn.Module, keep: dict[int, Tensor]) -> dict:
    return {"units_before": [units_of(b) for b in model.blocks], "units_after": [units_of(b) for b in pruned.blocks],
            "kept": {i: idx.tolist() for i, idx in keep.items()}}


@register("bn-scale-l1", kind="objective", taxonomy="pruning/structured", keys=("liu2017learning",),
          keeps=all_but("early-exit"))
def bn_scale_l1(step: Step, weight: float = 1e-3) -> Tensor:
    r"""L1 penalty on every BatchNorm scale, $\lambda \sum_c |\gamma_c|$, the sparsity term of network
    slimming [@liu2017learning]; it drives the scales of unneeded channels toward zero."""
    gammas = [m.weight for m in step.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not gammas:
        raise TypeError(f"bn-scale-l1 needs BatchNorm layers; {type(step.model).__name__} has none")
    return weight * sum(g.abs().sum() for g in gammas)  # lambda sum |gamma|


@register("channel-slimming", kind="transform", taxonomy="pruning/structured", keys=("liu2017learning",),
          keeps=all_but("weight-grid", "trained-threshold", "early-exit"), changes=("structure",),
          requires={"model": ("ConvNet",)})
def channel_slimming(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.5, l1: float = 1e-3,
                     scope: str = "layer", train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                     loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""Network slimming: L1 on BatchNorm scales, then physical removal of weak channels with their
    neuron state [@liu2017learning].

    1. Sparsity training (`train`, default `PRUNE_FINETUNE`) with `bn_scale_l1` at weight `l1`.
    2. Score channel $c$ by $|\gamma_c| / \theta_c$ (`bn_scale_scores`) and remove the lowest
       `sparsity` fraction of channels with `remove_units`, which also removes their neurons'
       `tau`/`threshold` and the weights reading them. The paper ranks all channels globally
       (`scope="global"`); the default here prunes every block by the same fraction, because
       BatchNorm scales differ between blocks and a global cut can empty the first block
       (an error: `remove_units` never deletes a whole layer).
    3. Fine-tune the smaller network (`finetune`, default `PRUNE_FINETUNE`).
    """
    check_sparsity(sparsity)
    if not isinstance(model, ConvNet):
        raise TypeError(f"channel slimming needs a ConvNet with BatchNorm channels, got {type(model).__name__}")
    net = copy.deepcopy(model)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, PRUNE_FINETUNE, "train"), "sparsity-train", history,
              loss_terms=[functools.partial(bn_scale_l1, weight=l1)], extra_terms=loss_terms, extra_hooks=hooks)
    keep = select_units(bn_scale_scores(net), sparsity, scope)
    pruned = remove_units(net, keep)
    run_phase(pruned, data, encoder, budget(finetune, PRUNE_FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(pruned, encoder, history, _info(model, pruned, keep))


@register("activity-pruning", kind="transform", taxonomy="pruning/structured", keys=("li2024efficient",),
          keeps=all_but("weight-grid", "trained-threshold", "early-exit"), changes=("structure",),
          requires={"model": ("ConvNet", "MLP")})
def activity_pruning(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.5, scope: str = "layer",
                     samples: int = 1000, train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                     loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    """Remove the channels or hidden neurons that fire least, then fine-tune [@li2024efficient].

    Score every channel (ConvNet) or hidden neuron (MLP) by its firing rate on `samples` training
    inputs after `train` (default none: the input is taken as trained), remove the least active
    `sparsity` fraction (per block by default, since firing rates differ between layers) with
    `remove_units`, and fine-tune (`finetune`, default `PRUNE_FINETUNE`). Only the pruning half of the
    paper's prune-and-regenerate loop is implemented.
    """
    check_sparsity(sparsity)
    check_units_model(model, "activity pruning")
    net = copy.deepcopy(model)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    scores = firing_rate_scores(net, data.train_x[:samples], encoder)
    keep = select_units(scores, sparsity, scope)
    pruned = remove_units(net, keep)
    run_phase(pruned, data, encoder, budget(finetune, PRUNE_FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    info = _info(model, pruned, keep)
    info["firing_rates"] = {i: s.tolist() for i, s in scores.items()}
    return Compressed(pruned, encoder, history, info)
