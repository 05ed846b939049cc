"""Fashion-MNIST [@xiao2017fashionmnist] and CIFAR-10 [@krizhevsky2009learning] from local files, read with
numpy, gzip and pickle alone (no torchvision), with their official train/test splits.

* Fashion-MNIST: 28 x 28 grey images of 10 kinds of clothing, 60 000 training and 10 000 test, in the IDX
  files of MNIST (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte`, each gzipped or not) under `FashionMNIST/raw/` (torchvision's folder) or
  `FashionMNIST/`. An IDX file is a magic number (two zero bytes, a type byte, 0x08 for unsigned bytes, and
  the number of dimensions), the size of each dimension as a big-endian 32-bit integer, then the data.
* CIFAR-10: 32 x 32 colour images of 10 classes, 50 000 training (`data_batch_1` to `data_batch_5`) and
  10 000 test (`test_batch`) under `cifar-10-batches-py/`, the "python version" of the data set: each
  batch a pickled dictionary with `data` (`[10000, 3072]` uint8, the red, green then blue planes, row by row)
  and `labels`. Unpickling runs code named in the file, so these files are read with an unpickler that only
  builds dictionaries, lists and NumPy arrays (anything else in the file is an error).

Both come as `[N, C, H, W]` floats in [0, 1] (pixels / 255), the layout of `bundled.mnist5k`.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from . import local
from .splits import Split

__all__ = ["FASHION_FOLDER", "FASHION_FILES", "CIFAR_FOLDER", "CIFAR_FILES", "read_idx", "read_cifar_batch",
           "fashion_files", "fashion_mnist", "cifar_files", "cifar10"]

FASHION_FOLDER = "FashionMNIST"  # torchvision's folder name; the files may sit in it or in its raw/
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")
FASHION_LAYOUT = ("  FashionMNIST/raw/<name> or FashionMNIST/<name>, <name> each of\n  "
                  + ", ".join(FASHION_FILES) + "\n  (each gzipped, with .gz, or not)")
CIFAR_FOLDER = "cifar-10-batches-py"  # the folder of the python version's archive (and torchvision's)
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_LAYOUT = "  cifar-10-batches-py/" + ", ".join(CIFAR_FILES)


def read_idx(path: str | Path, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when its name ends in `.gz`) with `dims` dimensions; a wrong
    magic number, a wrong number of dimensions or a size that disagrees with the header is a `ValueError`."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: not a readable gzip file ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; an IDX file of unsigned "
                         f"bytes starts with 000008 and its number of dimensions")
    if raw[3] != dims:
        raise ValueError(f"{path}: {raw[3]} dimensions in the header, expected {dims}")
    head = 4 + 4 * dims
    if len(raw) < head:
        raise ValueError(f"{path}: truncated header ({len(raw)} bytes)")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:head], dtype=">u4"))
    if len(raw) - head != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes of data) but the file "
                         f"holds {len(raw) - head} (truncated or padded)")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def _fashion_folder(root: str | Path | None) -> tuple[Path, dict[str, Path]]:
    folder = local.folder_of(root, "Fashion-MNIST", FASHION_FOLDER, FASHION_LAYOUT)
    found: dict[str, Path] = {}
    for name in FASHION_FILES:
        for where in (folder / "raw", folder):
            hit = next((where / n for n in (name, name + ".gz") if (where / n).is_file()), None)
            if hit is not None:
                found[name] = hit
                break
    missing = [n for n in FASHION_FILES if n not in found]
    if missing:
        raise local.MissingData(f"Fashion-MNIST: missing {', '.join(missing)} (with or without .gz) under {folder} "
                                f"and {folder / 'raw'}; expected the layout\n{FASHION_LAYOUT}")
    return folder, found


def fashion_files(root: str | Path | None = None) -> list[Path]:
    """The four files `fashion_mnist` reads, for the data set's identity (`local.identity`)."""
    return list(_fashion_folder(root)[1].values())


def fashion_mnist(root: str | Path | None = None, limit: int | None = None) -> Split:
    """Fashion-MNIST from `<root>/FashionMNIST/` (root: the argument or `$SNNCOMP_DATA`): `[N, 1, 28, 28]`
    in [0, 1]; `limit` keeps at most that many images of each part, class-balanced (`local.balanced`)."""
    _, found = _fashion_folder(root)
    parts = []
    for prefix in ("train", "t10k"):
        x = read_idx(found[f"{prefix}-images-idx3-ubyte"], 3)
        y = read_idx(found[f"{prefix}-labels-idx1-ubyte"], 1)
        if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28):
            raise ValueError(f"Fashion-MNIST: {found[f'{prefix}-images-idx3-ubyte']} holds images of shape {x.shape} "
                             f"for {y.shape[0]} labels in {found[f'{prefix}-labels-idx1-ubyte']}; expected "
                             "[N, 28, 28] and N labels")
        keep = local.balanced(y, limit)
        parts.append(((x[keep, None] / np.float32(255)).astype(np.float32), y[keep]))
    return local.to_split(parts[0], parts[1], "fashion-mnist")


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and plain containers and refuses every other class or function."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("builtins", "bytearray"),
               ("_codecs", "encode")}  # how protocol 2 stores bytes when Python 3 writes it

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch: images `[n, 3, 32, 32]` uint8 and labels `[n]`; a file that is not such a pickled
    dictionary (or holds other objects, or data of another shape) is a `ValueError` naming it."""
    try:
        d = _ArraysOnly(io.BytesIO(Path(path).read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a {type(d).__name__}, not a dictionary)")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path}: a CIFAR-10 batch holds 'data' and 'labels'; found {', '.join(map(str, d))}")
    x, y = np.asarray(d["data"]), np.asarray(d["labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise ValueError(f"{path}: 'data' must be uint8 [n, 3072] with n labels; got {x.dtype} {x.shape} "
                         f"and {len(y)} labels")
    return x.reshape(-1, 3, 32, 32), y


def cifar_files(root: str | Path | None = None) -> list[Path]:
    """The six batches `cifar10` reads, for the data set's identity (`local.identity`)."""
    folder = local.folder_of(root, "CIFAR-10", CIFAR_FOLDER, CIFAR_LAYOUT)
    return local.require(folder, CIFAR_FILES, "CIFAR-10", CIFAR_LAYOUT)


def cifar10(root: str | Path | None = None, limit: int | None = None) -> Split:
    """CIFAR-10 from `<root>/cifar-10-batches-py/` (root: the argument or `$SNNCOMP_DATA`): `[N, 3, 32, 32]`
    in [0, 1]; `limit` keeps at most that many images of each part, class-balanced."""
    paths = cifar_files(root)
    batches = [read_cifar_batch(p) for p in paths]
    parts = []
    for group in (batches[:5], batches[5:]):
        x, y = np.concatenate([b[0] for b in group]), np.concatenate([b[1] for b in group])
        keep = local.balanced(y, limit)
        parts.append(((x[keep] / np.float32(255)).astype(np.float32), y[keep]))
    return local.to_split(parts[0], parts[1], "cifar10")
