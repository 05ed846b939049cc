r"""Pruning: removing synapses, neurons, channels or time steps (section 3.1 of [@xie2024efficient]).

The files follow the taxonomy and keep three concerns apart so they combine freely
(as Torch-Pruning does):

* **importance scores** (`scores`): pure functions `model -> {layer or block: score tensor}`;
* **mechanics**: masks with an exact count of zeros, kept on the model as parametrizations (`masks`),
  the hooks that prune during training (`hooks`), the parametrizations and hooks of the methods that
  rewire or re-parameterise synapses while training (`rewiring`: Grad R, Deep R, RigL and SET, soft
  threshold), and physical removal of channels or neurons with their neuron state (`units`);
* **schedules** (`schedules`): one shot, cubic, iterative, and the learning rate of each step of `fit`;

and then the methods, one module per family of the survey: `unstructured`, `structured` and
`time_steps` (the registered taxonomy paths `pruning/unstructured`, `pruning/structured` and
`pruning/time-steps`). Every method follows the transform contract of `snncomp.compress`.
"""

from .hooks import *  # noqa: F401,F403
from .masks import *  # noqa: F401,F403
from .rewiring import *  # noqa: F401,F403
from .schedules import *  # noqa: F401,F403
from .scores import *  # noqa: F401,F403
from .structured import *  # noqa: F401,F403
from .time_steps import *  # noqa: F401,F403
from .units import *  # noqa: F401,F403
from .unstructured import *  # noqa: F401,F403
