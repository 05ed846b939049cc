r"""Time-step pruning: running the same network for fewer steps (section 3.1 of [@xie2024efficient]).

Fewer steps mean fewer synaptic operations and lower latency per inference; the network is
fine-tuned at each shorter length so it learns to decide sooner. The result's `encoder` is the one
the shorter network must be fed with.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from torch import nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, TrainConfig, evaluate
from .unstructured import PRUNE_FINETUNE

__all__ = ["timestep_reduction", "halvings", "with_steps", "retime"]


def halvings(T: int) -> tuple[int, ...]:
    """T/2, T/4, ... down to 1 (integer halving), e.g. 16 -> (8, 4, 2, 1)."""
    out, t = [], T // 2
    while t >= 1:
        out.append(t)
        t //= 2
    return tuple(out)


def with_steps(encoder: Encoder, T: int) -> Encoder:
    """`encoder` at `T` steps, every other setting kept; an encoder wrapping another (`inner`, as MINT's
    `GridInput`) has its inner encoder set to `T` too."""
    inner = getattr(encoder, "inner", None)
    if isinstance(inner, Encoder):
        return dataclasses.replace(encoder, T=T, inner=with_steps(inner, T))
    return dataclasses.replace(encoder, T=T)


def retime(model: nn.Module, T: int) -> None:
    """Re-bake, in place, the state of `model` tied to the number of steps: every module with a
    `retime(T)` method (TA-SNN's temporal attention) is set to `T` steps."""
    for m in model.modules():
        if m is not model and callable(getattr(m, "retime", None)):
            m.retime(T)


@register("timestep-reduction", kind="transform", taxonomy="pruning/time-steps", keys=("chowdhury2022ultra",),
          keeps=all_but("early-exit"), changes=("T",))
def timestep_reduction(model: nn.Module, data: Split, encoder: Encoder, *, steps: Sequence[int] | None = None,
                       keep_models: bool = False, train: TrainConfig | None = None,
                       finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                       hooks: Sequence[Hook] = ()) -> Compressed:
    r"""Progressive time-step reduction: fine-tune at successively fewer steps [@chowdhury2022ultra].

    Starting from a model trained with `encoder` at $T$ steps, train it at each $T'$ of `steps` in
    turn (default: halving down to 1, e.g. 16 -> 8 -> 4 -> 2 -> 1) for `train` (default
    `PRUNE_FINETUNE`), each stage starting from the previous one; `finetune` (default none) trains once
    more at the last $T'$. The result's encoder is `with_steps(encoder, T')` for the last $T'$ (every
    other setting of the encoder kept), and state tied to $T$ is re-baked at each stage (`retime`:
    TA-SNN's attention keeps its weights for the first $T'$ steps; our rule, not the paper's).

    `.info["accuracy"]` maps each $T$ to the test accuracy after its stage (the input model at the
    start), `.info["accuracy_before_finetune"]` to the accuracy on entering the stage, and, with
    `keep_models`, `.info["models"]` holds every stage's model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"timestep_reduction: expected an nn.Module, got {type(model).__name__}")
    T0 = encoder.T
    steps = halvings(T0) if steps is None else tuple(steps)
    if not steps or any(not isinstance(t, int) or t < 1 for t in steps) or \
            any(b >= a for a, b in zip((T0, *steps), steps)):
        raise ValueError(f"steps must be strictly decreasing positive ints below T={T0}, got {steps!r}")
    train = budget(train, PRUNE_FINETUNE, "train")
    net = copy.deepcopy(model)
    acc = {T0: evaluate(net, data.test_x, data.test_y, encoder)}
    before: dict[int, float] = {}
    kept: dict[int, nn.Module] = {T0: copy.deepcopy(net)} if keep_models else {}
    history: list[dict] = []
    enc = encoder
    for t in steps:
        enc = with_steps(encoder, t)
        retime(net, t)
        before[t] = evaluate(net, data.test_x, data.test_y, enc)
        run_phase(net, data, enc, train, f"T={t}", history, extra_terms=loss_terms, extra_hooks=hooks)
        acc[t] = evaluate(net, data.test_x, data.test_y, enc)
        if keep_models:
            kept[t] = copy.deepcopy(net)
    run_phase(net, data, enc, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    info = {"T": steps[-1], "accuracy": acc, "accuracy_before_finetune": before}
    if keep_models:
        info["models"] = kept
    return Compressed(net, enc, history, info)
