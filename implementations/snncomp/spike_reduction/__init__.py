r"""Reducing spike firing (section 3.4 of [@xie2024efficient]): fewer spikes, fewer synaptic operations.

The files follow the taxonomy: `rate` (activity regularisers, the synaptic-operation loss, learnable
thresholds, temporal-wise attention), `temporal_coding` (S4NN and time to first spike, at most one spike per
neuron) and `dynamic_inference` (confidence-based early exit), plus the shared mechanics `synops`
(synaptic operations as a differentiable function of the spikes).
"""

from .dynamic_inference import *  # noqa: F401,F403
from .rate import *  # noqa: F401,F403
from .synops import *  # noqa: F401,F403
from .temporal_coding import *  # noqa: F401,F403
