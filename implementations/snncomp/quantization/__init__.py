r"""Quantization: fewer bits for weights, membrane potentials, or both (section 3.2 of [@xie2024efficient]).

The files follow the taxonomy: `weights` (uniform post-training and quantization-aware, LSQ, k-means
sharing, ADMM), `membrane_potential` (Q-SpiNN-style state quantization and MINT's shared integer grid)
and `binary` (one-bit weights with a scaling factor), plus the shared mechanics: `quantizers` (the fake
quantizer, the straight-through estimator and LSQ as parametrizations that stack on a pruning mask),
`sharing` (codebooks and the ADMM hook) and `integer` (export to integer tensors and integer-only
inference). Every method follows the transform contract of `snncomp.compress`.
"""

from .quantizers import *  # noqa: F401,F403
from .weights import *  # noqa: F401,F403
from .membrane_potential import *  # noqa: F401,F403
from .binary import *  # noqa: F401,F403
from .integer import *  # noqa: F401,F403
from .sharing import *  # noqa: F401,F403
