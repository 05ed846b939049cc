"""Every input of snncomp: the data sets, the train/validation/test `Split` they come as, the encoders
that turn inputs into spike trains, and the synthetic event sensor.

| module | what |
|---|---|
| `splits` | `Split` (train, validation and test tensors) and `split` (seeded stratified split) |
| `bundled` | the sets shipped inside installed packages: `mnist5k`, `mnist1k`, `digits` |
| `encoding` | encoders of static inputs: `Rate`, `Latency`, `Direct` (and their functions) |
| `sensor` | the synthetic event sensor (`Saccades`, `generate`, `EventSet`) |
| `frames` | event streams binned into frames, and the `Frames` encoder |
| `synthetic` | the synthetic N-MNIST-like data set, made offline and cached (`nmnist_like`) |
| `nmnist` | the N-MNIST `.bin` reader and the data set loader |

The names most callers need are re-exported here: `Split`, `split`, `mnist5k`, `mnist1k`, `digits`,
`nmnist_like` and `Frames`.
"""

from __future__ import annotations

from . import bundled, encoding, frames, nmnist, sensor, splits, synthetic
from .bundled import digits, mnist1k, mnist5k
from .frames import Frames
from .splits import Split, split
from .synthetic import nmnist_like

__all__ = ["Split", "split", "mnist5k", "mnist1k", "digits", "nmnist_like", "Frames", "bundled", "encoding", "frames",
           "nmnist", "sensor", "splits", "synthetic"]
