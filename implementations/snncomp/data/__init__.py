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
| `nmnist` | N-MNIST from local `.bin` files (reader and loader) |
| `shd` | the Spiking Heidelberg Digits from local HDF5 files |
| `dvs_gesture` | DVS128 Gesture from local NumPy files |
| `images` | Fashion-MNIST (IDX files) and CIFAR-10 (python batches) from local files |
| `local` | what the local loaders share: `SNNCOMP_DATA`, errors, subsets, binning, file identity |
| `catalog` | the data sets by name (`DATASETS`, `load`, `identity`) |

The names most callers need are re-exported here: `Split`, `split`, `mnist5k`, `mnist1k`, `digits`,
`nmnist_like`, `Frames`, and `load` and `DATASETS` of the catalog. Nothing in this package downloads
anything: the local data sets are read from a folder (see `local` and the Datasets page).
"""

from __future__ import annotations

from . import bundled, catalog, dvs_gesture, encoding, frames, images, local, nmnist, sensor, shd, splits, synthetic
from .bundled import digits, mnist1k, mnist5k
from .catalog import DATASETS, load
from .frames import Frames
from .splits import Split, split
from .synthetic import nmnist_like

__all__ = ["Split", "split", "mnist5k", "mnist1k", "digits", "nmnist_like", "Frames", "load", "DATASETS", "bundled",
           "catalog", "dvs_gesture", "encoding", "frames", "images", "local", "nmnist", "sensor", "shd", "splits",
           "synthetic"]
