r"""Chains of compression methods: checked before any training, then applied one after the other.

A chain is a sequence of `Step`s, each a registered transform, a registered objective, or the built-in
`"train"` step. Every method declares, at registration (`registry.register`), what it does to the state
of a model:

* **constraints** it *leaves* on the model and that a later method must keep or refuse:
  `"mask"` (pruning masks as parametrizations), `"weight-grid"` (weight quantizers as parametrizations:
  uniform, LSQ, binary, k-means, power-of-two, fixed point), `"membrane-grid"` (a membrane-potential
  quantizer on the neurons: Q-SpiNN, MINT), `"trained-threshold"` (learned thresholds and leaks),
  `"attention"` (TA-SNN modules), `"early-exit"` (the early-exit wrapper);
* which of the constraints of earlier steps it *keeps* (`"all"`, or a tuple; `registry.all_but(...)`);
* **facts** it *changes*: `"T"`, `"encoder"`, `"neuron"`, `"structure"` (channels removed),
  `"architecture"` (a new network), `"model"`; a change may name the new value (`"encoder=latency"`);
* what it *requires* of its input, e.g. `{"neuron": ("LIF",)}` or `{"model": ("ConvNet", "MLP")}`.

`check` uses only these declarations, so an order that cannot work is refused before anything trains,
with a `ChainError` naming both steps and why. `run` checks, then applies every step to a copy of the
model: a transform is called with its options (budgets given as dicts of `TrainConfig` fields), an
objective becomes a fine-tune phase with the objective as a weighted loss term (options `weight`,
default 1, and `finetune`, default `OBJECTIVE_FINETUNE`), and `"train"` is plain training (option
`train`, default `TRAIN`), the control that trains a model alone for the same budget. Every history
record is tagged with its `step` index, `method`, `label` and `phase`.

**Freezing.** What an earlier step trained keeps training in every later phase unless a step freezes it:
`Step(freeze=("quantizer-steps",))` keeps every quantizer's trained parameters (LSQ steps, k-means
centroids, ...) fixed in that step's phases, `"thresholds"` the learned thresholds and leaks. `freeze=None`
takes the method's `freezes_by_default`. Our default freezes nothing for every method: none of the papers
implemented here continues training on top of another method's learned steps or thresholds, so none gives a
rule to follow; a recipe asks for freezing explicitly.

Step indices are 0-based, in the attributes and in the messages of `ChainError`.

What a model carries now (`constraints`, `broken`) and the declarations of every method
(`declarations`, `declarations_table`) are in `snncomp.constraints`, re-exported here.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn
from torch.nn.utils import parametrize

from . import registry
from .compress import Compressed, run_phase
from .constraints import broken, constraints, declarations, declarations_table
from .data import Split
from .data.encoding import Encoder
from .registry import FREEZABLE, all_but
from .train import TrainConfig

__all__ = ["ChainError", "Step", "check", "run", "constraints", "broken", "declarations", "declarations_table", "TRAIN",
           "OBJECTIVE_FINETUNE", "BUDGETS", "options_of"]

TRAIN = TrainConfig()  # the built-in "train" step's default budget: `fit`'s own default
OBJECTIVE_FINETUNE = TrainConfig(epochs=4, lr=2e-3)  # an objective's fine-tune phase, as pruning's recovery
BUDGETS = ("train", "finetune", "dense")  # options that are training budgets (dicts of TrainConfig fields)

# the built-in step: plain training keeps every constraint but the early-exit wrapper (its calibration
# would go stale)
_TRAIN_KEEPS = all_but("early-exit")

# why a constraint is dropped, when the later method does not say more
_DROPS = {
    "mask": "it would not keep the pruned weights at zero",
    "weight-grid": "it re-parametrizes or bakes the weights, so the weight quantizers would be dropped",
    "membrane-grid": "it replaces or re-parametrizes the neurons, so the membrane quantizer would be dropped "
                     "or moved off its grid",
    "trained-threshold": "it needs the neurons' thresholds as fixed buffers with the original reset",
    "attention": "it cannot carry the temporal attention modules",
    "early-exit": "the early-exit wrapper must be the last step (its exit threshold is calibrated on the final "
                  "model)",
}
# more specific reasons, (later method, constraint) -> reason
_WHY = {
    ("soft-threshold", "weight-grid"): "soft-threshold bakes its input and re-parametrizes every weight, so the "
                                       "weight quantizers would be dropped; quantize after it",
    ("grad-rewiring", "weight-grid"): "Grad R bakes its input and re-parametrizes every weight, so the weight "
                                      "quantizers would be dropped; quantize after it",
    ("deep-r", "weight-grid"): "Deep R bakes its input and re-parametrizes every weight, so the weight "
                               "quantizers would be dropped; quantize after it",
    ("attention-transfer", "attention"): "attention transfer pairs every activation layer of the student with "
                                         "the teacher's, and would pair the attention modules' own layers too",
    ("mint", "attention"): "MINT's integer model has no place for the attention's real-valued scores",
    ("mint", "weight-grid"): "MINT folds batch normalisation into the weights, which needs unquantized weights; "
                             "apply MINT first",
    ("mint", "trained-threshold"): "MINT puts each threshold on its integer grid, which a learned "
                                   "(parametrized) threshold does not keep",
    ("uniform-ptq", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("uniform-qat", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("lsq", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("kmeans-sharing", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("admm-quantization", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("binary-weights", "membrane-grid"): "it would replace the weights' grid after a membrane quantizer was set (MINT ties the "
                              "membrane grid to the weights' step); quantize the weights before the membrane",
    ("q-spinn", "membrane-grid"): "it would replace the membrane quantizer an earlier step set (and MINT's shared grid)",
    ("time-to-first-spike", "membrane-grid"): "time-to-first-spike swaps every LIF for a single-spike neuron "
                                              "that has no membrane quantizer",
    ("time-to-first-spike", "trained-threshold"): "time-to-first-spike needs hard-reset LIFs with buffer "
                                                  "thresholds; apply learnable-threshold after it",
    ("learnable-threshold", "membrane-grid"): "learnable-threshold moves the thresholds off the membrane grid "
                                              "(MINT's integer threshold); quantize the membrane after it",
    ("channel-slimming", "weight-grid"): "removing channels through a weight quantizer is not supported; "
                                         "quantize after channel slimming",
    ("activity-pruning", "weight-grid"): "removing units through a weight quantizer is not supported; "
                                         "quantize after activity pruning",
    ("channel-slimming", "trained-threshold"): "removing channels cannot cut parametrized per-channel "
                                               "thresholds; learn the thresholds after it",
    ("activity-pruning", "trained-threshold"): "removing units cannot cut parametrized per-channel thresholds; "
                                               "learn the thresholds after it",
}


class ChainError(ValueError):
    """An order of methods that cannot work, raised before any training: `.later` is the step refused,
    `.earlier` the step whose constraint or change it conflicts with (`None` when the conflict is with the
    input itself or the step alone), `.reason` why."""

    def __init__(self, later: int, later_name: str, reason: str, earlier: int | None = None,
                 earlier_name: str | None = None) -> None:
        self.later, self.earlier, self.reason = later, earlier, reason
        head = f"step {later} {later_name!r}"
        if earlier is not None:
            head += f" cannot follow step {earlier} {earlier_name!r}"
        super().__init__(f"{head}: {reason}")


@dataclass(frozen=True)
class Step:
    """One step of a chain: a registered transform or objective, or `"train"`, with its keyword options
    (budgets `train`/`finetune`/`dense` as dicts of `TrainConfig` fields or `TrainConfig`s), what it
    freezes of what earlier steps trained (`None`: the method's defaults) and a label for reports."""

    method: str
    options: dict = field(default_factory=dict, hash=False)
    freeze: tuple[str, ...] | None = None
    label: str = ""

    @property
    def name(self) -> str:
        """The label, or the method name."""
        return self.label or self.method


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class _Decl:
    name: str
    kind: str
    leaves: tuple[str, ...]
    keeps: tuple[str, ...] | str
    changes: tuple[str, ...]
    requires: dict
    freezes_by_default: tuple[str, ...]
    fn: Callable | None

    def keeps_constraint(self, c: str) -> bool:
        return self.keeps == "all" or c in self.keeps


_TRAIN_DECL = _Decl("train", "train", (), _TRAIN_KEEPS, (), {}, (), None)


def _decl(index: int, step: Step) -> _Decl:
    if not isinstance(step, Step):
        raise TypeError(f"step {index}: expected a chain.Step, got {type(step).__name__}")
    if step.method == "train":
        return _TRAIN_DECL
    try:
        m = registry.get(step.method)
    except registry.UnknownMethodError as e:
        raise ChainError(index, step.method, str(e.args[0])) from None
    if m.kind not in ("transform", "objective"):
        raise ChainError(index, step.method, f"a {m.kind} cannot be a chain step (only transforms, objectives and "
                                             "'train')")
    return _Decl(m.name, m.kind, m.leaves, m.keeps, m.changes, m.requires, m.freezes_by_default, m.fn)


_SUPPLIED = {"model", "data", "encoder", "loss_terms", "hooks", "step"}  # given by the chain, never by a step


def options_of(method: str) -> dict[str, inspect.Parameter]:
    """The options a step of `method` may set: the method's parameters less what the chain supplies, plus
    `weight` and `finetune` for an objective (its weight and its phase's budget); `train` for the
    built-in "train" step. Raises `registry.UnknownMethodError` for an unknown method."""
    if method == "train":
        return {"train": inspect.Parameter("train", inspect.Parameter.KEYWORD_ONLY, default=None,
                                           annotation=TrainConfig)}
    m = registry.get(method)
    params = {n: p for n, p in inspect.signature(m.fn).parameters.items()
              if n not in _SUPPLIED and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if m.kind == "objective":
        params.setdefault("weight", inspect.Parameter("weight", inspect.Parameter.KEYWORD_ONLY, default=1.0,
                                                      annotation=float))
        params["finetune"] = inspect.Parameter("finetune", inspect.Parameter.KEYWORD_ONLY, default=None,
                                               annotation=TrainConfig)
    return params


# ----------------------------------------------------------------------------- facts of a model


_UNKNOWN = object()  # a fact of the input that was not given


def _encoder_kind(encoder: Encoder | None):
    if encoder is None:
        return _UNKNOWN
    inner = getattr(encoder, "inner", None)
    return _encoder_kind(inner) if inner is not None else type(encoder).__name__.lower()


def _neurons(model: nn.Module | None):
    if model is None:
        return _UNKNOWN
    from .neurons import SpikingNeuron

    return {parametrize.type_before_parametrizations(m).__name__ for m in model.modules()
            if isinstance(m, SpikingNeuron)}


def _facts(model, encoder) -> dict:
    return {"encoder": _encoder_kind(encoder), "neuron": _neurons(model),
            "model": _UNKNOWN if model is None else parametrize.type_before_parametrizations(model).__name__,
            "T": _UNKNOWN if encoder is None else encoder.T}


def check(steps: Sequence[Step], *, encoder: Encoder | None = None, model: nn.Module | None = None) -> None:
    """Refuse, before any training, a chain that cannot work: an unknown method, an option the method does
    not take, a freeze it does not know, a requirement its input does not meet, or a later step that does
    not keep a constraint an earlier step left. Uses only the methods' declarations (and the facts of
    `model` and `encoder` when given); raises `ChainError`."""
    facts = _facts(model, encoder)
    changed_by: dict[str, int] = {}
    active: dict[str, int] = {}  # constraint -> the step that left it
    steps = list(steps)
    for j, step in enumerate(steps):
        d = _decl(j, step)
        allowed = options_of(d.name)
        bad = [k for k in step.options if k not in allowed]
        if bad:
            close = difflib.get_close_matches(bad[0], sorted(allowed), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else f"; it takes: {', '.join(sorted(allowed))}"
            raise ChainError(j, step.method, f"unknown option {bad[0]!r}{hint}")
        for k in BUDGETS:
            v = step.options.get(k)
            if v is not None and not isinstance(v, (dict, TrainConfig)):
                raise ChainError(j, step.method, f"option {k!r} must be a dict of TrainConfig fields, got {v!r}")
        if step.freeze is not None:
            if isinstance(step.freeze, str) or any(f not in FREEZABLE for f in step.freeze):
                raise ChainError(j, step.method, f"freeze must be a tuple of {', '.join(FREEZABLE)}, "
                                                 f"got {step.freeze!r}")
        for fact, accepted in d.requires.items():
            value = facts.get(fact, _UNKNOWN)
            if value is _UNKNOWN:
                continue  # the input's fact was not given: nothing to check statically
            i = changed_by.get(fact)
            if value is None:  # changed by step i to a value its declaration does not name
                raise ChainError(j, step.method, f"it requires the {fact} to be one of {', '.join(accepted)}, "
                                                 f"and the earlier step changes the {fact}", i, steps[i].method)
            have = value if isinstance(value, set) else {value}
            if not have & set(accepted):
                got = ", ".join(sorted(map(str, have))) or "none"
                raise ChainError(j, step.method, f"it requires the {fact} to be one of {', '.join(accepted)}, "
                                                 f"got {got}", i, steps[i].method if i is not None else None)
        for c, i in active.items():
            if not d.keeps_constraint(c):
                reason = _WHY.get((d.name, c), _DROPS[c])
                raise ChainError(j, step.method, f"it does not keep the {c} step {i} leaves: {reason}", i,
                                 steps[i].method)
        if d.kind == "transform":
            for ch in d.changes:
                fact, _, value = ch.partition("=")
                facts[fact] = ({value} if fact == "neuron" else value) if value else None
                changed_by[fact] = j
            if "architecture" in [ch.partition("=")[0] for ch in d.changes]:
                active = {}
        active = {c: i for c, i in active.items() if d.keeps_constraint(c)}
        active.update({c: j for c in d.leaves})


# ----------------------------------------------------------------------------- freezing


def _frozen_parameters(model: nn.Module, what: Sequence[str]) -> list[nn.Parameter]:
    """The parameters `what` names: `"quantizer-steps"`, the trained parameters of every quantizer (a
    parametrization or module with `bits`: LSQ steps, k-means centroids); `"thresholds"`, the learned
    thresholds and time constants of the spiking neurons."""
    from .neurons import SpikingNeuron

    out: list[nn.Parameter] = []
    for m in model.modules():
        if "quantizer-steps" in what and hasattr(m, "bits"):
            out += list(m.parameters(recurse=False))
        if "thresholds" in what and isinstance(m, SpikingNeuron):
            for name in ("threshold", "tau"):
                if parametrize.is_parametrized(m, name):
                    out.append(m.parametrizations[name].original)
                elif isinstance(m._parameters.get(name), nn.Parameter):
                    out.append(m._parameters[name])
    return out


def _set_trainable(model: nn.Module, what: Sequence[str], trainable: bool) -> int:
    params = _frozen_parameters(model, what)
    for p in params:
        p.requires_grad_(trainable)
    return len(params)


# ----------------------------------------------------------------------------- run


def _budget(value, progress: bool | None) -> TrainConfig | None:
    if value is None or isinstance(value, TrainConfig):
        return value
    value = dict(value)
    if progress is not None:
        value.setdefault("progress", progress)
    return TrainConfig(**value)


def _teacher_for(j: int, step: Step, teachers):
    if "teacher" in step.options:
        return step.options["teacher"]
    if teachers is None:
        return None
    if isinstance(teachers, Mapping):
        for key in (j, step.label, step.method):
            if key in teachers:
                return teachers[key]
        return None
    return teachers


def run(steps: Sequence[Step], model: nn.Module, data: Split, encoder: Encoder, *, teachers=None,
        after_step: Callable[[int, Step, Compressed], None] | None = None, progress: bool | None = None,
        seed: int = 0) -> Compressed:
    """Check the chain (`check`), then apply every step in order to a copy of `model` (the input is never
    modified) and return the last model, the encoder it must be fed with, the history of every phase of
    every step (each record tagged with `step`, `method`, `label` and `phase`) and `info = {"steps": [each
    step's info]}`.

    A teacher given by baseline name is that baseline trained at `seed` (the run's seed, so each seed of a
    student learns from the teacher of the same seed). `teachers` supplies the teacher of every step that
    needs one and has no `teacher` option: one teacher
    (anything `distillation.teachers.resolve` takes) for all, or a mapping from step index, label or method
    name to a teacher. `after_step(index, step, so_far)` is called after each step with the chain's result
    so far. `progress` sets the progress bars of the budgets given as dicts."""
    steps = list(steps)
    check(steps, encoder=encoder, model=model)
    decls = [_decl(j, s) for j, s in enumerate(steps)]
    extras: list[dict] = []
    for j, (step, d) in enumerate(zip(steps, decls)):  # every needed input present, before any training
        extra = {}
        needs = registry.get(d.name).needs if d.kind != "train" else ()
        for n in needs:
            if n == "teacher":
                t = _teacher_for(j, step, teachers)
                if t is None:
                    raise ChainError(j, step.method, "it needs a teacher: give it the option 'teacher' or pass "
                                                     "teachers= to chain.run")
                from .distillation.teachers import resolve

                try:
                    # a teacher named by baseline is that baseline at the run's seed, as the student's
                    extra["teacher"] = resolve(t, seed=seed, where=f"step {j} {step.method!r}")
                except (TypeError, KeyError) as e:
                    raise ChainError(j, step.method, str(e.args[0])) from None
            elif n not in step.options:
                raise ChainError(j, step.method, f"it needs the option {n!r}")
        extras.append(extra)
    net = copy.deepcopy(model)
    enc = encoder
    history: list[dict] = []
    infos: list[dict] = []
    for j, (step, d, extra) in enumerate(zip(steps, decls, extras)):
        freeze = tuple(d.freezes_by_default if step.freeze is None else step.freeze)
        _set_trainable(net, freeze, False)
        options = {**step.options, **extra}
        for k in BUDGETS:
            if k in options:
                options[k] = _budget(options[k], progress)
        own: list[dict] = []
        if d.kind == "train":
            run_phase(net, data, enc, options.get("train") or TRAIN, "train", own)
            info: dict = {}
        elif d.kind == "objective":
            from .spike_reduction.rate import weighted

            weight = options.pop("weight", 1.0)
            config = options.pop("finetune", None) or OBJECTIVE_FINETUNE
            run_phase(net, data, enc, config, "finetune", own, loss_terms=[weighted(d.fn, weight, **options)])
            info = {"weight": weight}
        else:
            out = d.fn(net, data, enc, **options)
            net, enc, own, info = out.model, out.encoder, list(out.history), dict(out.info)
        if freeze:
            _set_trainable(net, freeze, True)  # frozen for this step's phases only
        history += [{**r, "step": j, "method": d.name, "label": step.name} for r in own]
        infos.append(info)
        if after_step is not None:
            after_step(j, step, Compressed(net, enc, list(history), {"steps": list(infos)}))
    return Compressed(net, enc, history, {"steps": infos})

