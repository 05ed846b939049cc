r"""Knowledge distillation: training a small or fast SNN to imitate a teacher (section 3.3 of [@xie2024efficient]).

The files follow the taxonomy and keep the mechanics apart from the methods:

* **teachers** (`teachers`): a frozen network with its own encoder, from the one cached baseline builder;
* **losses** (`losses`): pure functions of tensors (soft targets, feature and attention distances) and
  what a spiking student's output is read from (time-averaged logits, spike counts, membrane potential);
* **terms** (`terms`): the loss terms that bind a teacher to the losses, the adapters of feature
  distillation, and `distil`, the runner every distillation transform trains through (`train.fit`);

and then the methods, one module per family of the survey: `ann_to_snn` and `snn_to_snn` (the
registered taxonomy paths `distillation/ann-to-snn` and `distillation/snn-to-snn`). Every transform
follows the contract of `snncomp.compress`; the objectives plug into `train.fit(loss_terms=...)`.
"""

from .ann_to_snn import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .snn_to_snn import *  # noqa: F401,F403
from .teachers import *  # noqa: F401,F403
from .terms import *  # noqa: F401,F403
