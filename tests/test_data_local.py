"""The local data sets: each loader reads tiny files written here in the real format (N-MNIST `.bin`, SHD HDF5,
DVS128 Gesture `.npy`, Fashion-MNIST IDX, CIFAR-10 python batches), rejects broken ones with the file named,
never touches the network, and a baseline trains on one of them through the runner."""

from __future__ import annotations

import gzip
import os
import pickle
import socket

import numpy as np
import pytest
import torch

from snncomp import baselines, chain, data, recipes, runner
from snncomp.data import catalog, dvs_gesture, images, local, nmnist, shd

# --------------------------------------------------------------------------------------------- file writers


def _nmnist_bin(path, recs) -> None:
    """N-MNIST records of 5 bytes: x, y, (p << 7 | t >> 16), t >> 8, t."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes([x, y, (p << 7) | (t >> 16) & 127, (t >> 8) & 255, t & 255]) for x, y, p, t in recs))


def write_nmnist(root, per_class=(3, 2)) -> None:
    for part, n in zip(("Train", "Test"), per_class):
        for digit in (0, 1, 2):
            for i in range(n):
                recs = [(digit + i, 3, 1, 10), (5, 7 + digit, 0, 1_000 * (i + 1)), (33, 33, 1, 300_000)]
                _nmnist_bin(root / "NMNIST" / part / str(digit) / f"{i:05d}.bin", recs)


def write_shd(root, n=(6, 3)) -> None:
    h5py = pytest.importorskip("h5py")
    (root / "SHD").mkdir(parents=True, exist_ok=True)
    for name, count in zip(shd.FILES, n):
        with h5py.File(root / "SHD" / name, "w") as f:
            times = f.create_dataset("spikes/times", (count,), dtype=h5py.vlen_dtype(np.float64))
            units = f.create_dataset("spikes/units", (count,), dtype=h5py.vlen_dtype(np.uint16))
            for i in range(count):
                times[i] = np.array([0.0, 0.25, 0.5, 0.75 + 0.0625 * i])
                units[i] = np.array([i, 699, 100 + i, i])
            f.create_dataset("labels", data=np.arange(count, dtype=np.uint8) % 3)
            f.create_dataset("extra/keys", data=np.array([b"zero", b"one", b"two"]))
            f.create_dataset("extra/speaker", data=np.zeros(count, dtype=np.uint8))


def write_gesture(root, n=(2, 1)) -> None:
    for part, count in zip(dvs_gesture.PARTS, n):
        for user in range(count):
            folder = root / "DVSGesture" / part / f"user{user + 1:02d}_fluorescent"
            folder.mkdir(parents=True, exist_ok=True)
            for label in (0, 4, 10):
                ev = np.array([[0, 0, 1, 0.0], [127, 64, 0, 10.5], [8 + label, 9, 1, 20.0], [9, 9, 0, 1999.0]])
                np.save(folder / f"{label}.npy", ev)


def _idx(values: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, values.ndim]) + np.array(values.shape, dtype=">u4").tobytes()
    return head + values.astype(np.uint8).tobytes()


def write_fashion(root, per_class=(8, 3), classes=3) -> None:
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in zip(("train", "t10k"), per_class):
        y = np.tile(np.arange(classes), n).astype(np.uint8)
        x = np.zeros((len(y), 28, 28), dtype=np.uint8)
        for i, c in enumerate(y):  # each class lights its own band of rows
            x[i, 8 * c:8 * c + 6, 4:24] = 200 + i % 50
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y)))


def write_cifar(root, per_batch=4) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(images.CIFAR_FILES):
        x = (np.arange(per_batch * 3072, dtype=np.int64).reshape(per_batch, 3072) + k) % 256
        batch = {"batch_label": f"batch {k}", "labels": [(k + i) % 10 for i in range(per_batch)],
                 "data": x.astype(np.uint8)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


# ------------------------------------------------------------------------------------------------ loaders


def test_nmnist_frames_labels_and_limit(tmp_path):
    write_nmnist(tmp_path)
    s = nmnist.load(tmp_path, T=4)
    assert s.train_x.shape == (9, 4, 2, 34, 34) and s.train_x.dtype == torch.uint8
    assert s.test_x.shape == (6, 4, 2, 34, 34) and s.name == "nmnist"
    assert s.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and s.test_y.bincount().tolist() == [2, 2, 2]
    # every event in one bin: 3 per recording; the first event (t = 10 us) in bin 0, the last (300 ms) in bin 3
    assert s.train_x.sum((1, 2, 3, 4)).tolist() == [3] * 9
    assert s.train_x[0, 0, 1, 3, 0] == 1 and s.train_x[0, 3, 1, 33, 33] == 1
    few = nmnist.load(tmp_path, T=4, limit=4)  # class by class: 0, 1, 2, then 0 again
    assert few.train_y.tolist() == [0, 0, 1, 2] and len(few.test_y) == 4


def test_shd_frames_labels(tmp_path):
    write_shd(tmp_path)
    s = shd.load(tmp_path, T=4)
    assert s.train_x.shape == (6, 4, 1, 1, 700) and s.test_x.shape == (3, 4, 1, 1, 700)
    assert s.train_y.tolist() == [0, 1, 2, 0, 1, 2] and s.num_classes == 3
    assert s.train_x[0, 0, 0, 0, 0] == 1 and s.train_x[0, 1, 0, 0, 699] == 1  # unit 0 at t = 0, 699 at 0.25 s
    assert s.train_x.sum().item() == 6 * 4


def test_dvs_gesture_frames_labels_and_downsample(tmp_path):
    write_gesture(tmp_path)
    s = dvs_gesture.load(tmp_path, T=2)
    assert s.train_x.shape == (6, 2, 2, 32, 32) and s.test_x.shape == (3, 2, 2, 32, 32)
    assert s.train_y.tolist() == [0, 4, 10, 0, 4, 10] and s.num_classes == 11
    assert s.train_x[0, 0, 1, 0, 0] == 1 and s.train_x[0, 0, 0, 16, 31] == 1  # (127, 64) -> (31, 16) at 1/4
    full = dvs_gesture.load(tmp_path, T=2, downsample=1)
    assert full.train_x.shape[-2:] == (128, 128) and full.train_x[0, 0, 0, 64, 127] == 1


def test_fashion_mnist_idx_gz_and_plain(tmp_path):
    write_fashion(tmp_path)
    s = images.fashion_mnist(tmp_path)
    assert s.train_x.shape == (24, 1, 28, 28) and s.test_x.shape == (9, 1, 28, 28)
    assert s.train_x.dtype == torch.float32 and 0 <= s.train_x.min() and s.train_x.max() <= 1
    assert s.train_y[:3].tolist() == [0, 1, 2] and s.train_x[1, 0, 8, 4] == pytest.approx(201 / 255)
    raw = tmp_path / "FashionMNIST" / "raw"
    for p in raw.iterdir():  # the same files, not gzipped, directly in FashionMNIST/
        (tmp_path / "FashionMNIST" / p.name[:-3]).write_bytes(gzip.decompress(p.read_bytes()))
        p.unlink()
    again = images.fashion_mnist(tmp_path, limit=6)
    assert torch.equal(again.train_x, s.train_x[:6]) and again.train_y.tolist() == [0, 1, 2, 0, 1, 2]


def test_cifar10_batches(tmp_path):
    write_cifar(tmp_path)
    s = images.cifar10(tmp_path)
    assert s.train_x.shape == (20, 3, 32, 32) and s.test_x.shape == (4, 3, 32, 32)
    assert s.train_y[:5].tolist() == [0, 1, 2, 3, 1] and s.test_y.tolist() == [5, 6, 7, 8]
    assert s.train_x[0, 1, 0, 0] == pytest.approx((1024 % 256) / 255)  # green plane starts at 1024
    assert s.train_x[0, 0, 0, 5] == pytest.approx(5 / 255)


def test_catalog_reads_snncomp_data_and_names_the_sets(tmp_path, monkeypatch):
    write_fashion(tmp_path)
    monkeypatch.setenv(local.ENV, str(tmp_path))
    assert catalog.load("fashion-mnist").train_x.shape == (24, 1, 28, 28)
    assert data.load("fashion-mnist", limit=3).train_y.tolist() == [0, 1, 2]
    ident = catalog.identity("fashion-mnist")
    assert ident == catalog.identity("fashion-mnist") and catalog.identity("mnist5k") is None
    f = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert catalog.identity("fashion-mnist") != ident  # touched files: another identity
    with pytest.raises(KeyError, match="known: mnist5k"):
        catalog.load("imagenet")
    with pytest.raises(ValueError, match="not read from a folder"):
        catalog.load("digits", root=tmp_path)


# ------------------------------------------------------------------------------------------ broken files


def test_missing_folder_and_files_name_what_is_expected(tmp_path, monkeypatch):
    monkeypatch.delenv(local.ENV, raising=False)
    with pytest.raises(local.MissingData, match="SNNCOMP_DATA"):
        nmnist.load()
    with pytest.raises(FileNotFoundError, match=r"(?s)no folder .*NMNIST; expected the layout.*NMNIST/Train/<digit 0-9>/<name>\.bin"):
        nmnist.load(tmp_path)
    (tmp_path / "NMNIST" / "Train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no <digit>/<name>\.bin files under .*NMNIST/Train"):
        nmnist.load(tmp_path)
    write_shd(tmp_path)
    (tmp_path / "SHD" / "shd_test.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing 1 file\(s\) under .*SHD: .*shd_test\.h5"):
        shd.load(tmp_path)
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        images.cifar10(tmp_path)
    write_fashion(tmp_path)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte \(with or without \.gz\)"):
        images.fashion_mnist(tmp_path)
    (tmp_path / "DVSGesture" / "ibmGestureTest").mkdir(parents=True)
    write_gesture(tmp_path, n=(1, 0))
    with pytest.raises(FileNotFoundError, match="ibmGestureTest"):
        dvs_gesture.load(tmp_path)


def test_truncated_and_empty_nmnist_files(tmp_path):
    write_nmnist(tmp_path)
    bad = tmp_path / "NMNIST" / "Test" / "1" / "00000.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"00000\.bin: 13 bytes is not a whole number"):
        nmnist.load(tmp_path)
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=r"1/00000\.bin: empty file"):
        nmnist.load(tmp_path)
    bad.write_bytes(bytes([40, 1, 0, 0, 5]))  # x = 40 on a 34-pixel sensor
    with pytest.raises(ValueError, match=r"00000\.bin: events outside the 34 x 34 sensor"):
        nmnist.load(tmp_path)


def test_broken_idx_files(tmp_path):
    write_fashion(tmp_path)
    f = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz"
    good = gzip.decompress(f.read_bytes())
    f.write_bytes(gzip.compress(b"\x00\x00\x0c\x03" + good[4:]))  # 0x0c: not unsigned bytes
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: bad magic number 00000c03"):
        images.fashion_mnist(tmp_path)
    f.write_bytes(gzip.compress(good[:-100]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: header says shape \(24, 28, 28\).*truncated"):
        images.fashion_mnist(tmp_path)
    f.write_bytes(good[:50])  # not gzip at all, under a .gz name
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not a readable gzip file"):
        images.fashion_mnist(tmp_path)
    lab = tmp_path / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    f.write_bytes(gzip.compress(good))
    lab.write_bytes(gzip.compress(_idx(np.zeros((5, 2), dtype=np.uint8))))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: 2 dimensions in the header, expected 1"):
        images.fashion_mnist(tmp_path)
    lab.write_bytes(gzip.compress(_idx(np.zeros(5, dtype=np.uint8))))
    with pytest.raises(ValueError, match=r"images of shape \(24, 28, 28\) for 5 labels"):
        images.fashion_mnist(tmp_path)


def test_broken_cifar_batches(tmp_path):
    write_cifar(tmp_path)
    f = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"data_batch_2: not a CIFAR-10 python batch"):
        images.cifar10(tmp_path)
    f.write_bytes(pickle.dumps({"data": np.zeros((2, 100), dtype=np.uint8), "labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data_batch_2: 'data' must be uint8 \[n, 3072\]"):
        images.cifar10(tmp_path)
    f.write_bytes(pickle.dumps({"data": os.getcwd, "labels": []}))  # a pickle that names a function
    with pytest.raises(ValueError, match=r"data_batch_2: .*refusing to load posix\.getcwd"):
        images.cifar10(tmp_path)


def test_broken_shd_and_gesture_files(tmp_path):
    h5py = pytest.importorskip("h5py")
    write_shd(tmp_path)
    f = tmp_path / "SHD" / "shd_train.h5"
    with h5py.File(f, "a") as h:
        del h["labels"]
    with pytest.raises(ValueError, match=r"shd_train\.h5: no dataset labels"):
        shd.load(tmp_path)
    f.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"shd_train\.h5: not a readable HDF5 file"):
        shd.load(tmp_path)
    write_gesture(tmp_path)
    g = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent" / "4.npy"
    np.save(g, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"4\.npy: expected an array \[n, 4\].*got shape \(5, 3\)"):
        dvs_gesture.load(tmp_path)
    g.write_bytes(b"\x93NUMPY broken")
    with pytest.raises(ValueError, match=r"4\.npy: not a readable \.npy array"):
        dvs_gesture.load(tmp_path)
    np.save(g, np.array([[200.0, 0, 1, 0]]))
    with pytest.raises(ValueError, match=r"4\.npy: events outside the 128 x 128 sensor"):
        dvs_gesture.load(tmp_path)


def test_nothing_is_downloaded(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a loader opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    write_nmnist(tmp_path), write_shd(tmp_path), write_gesture(tmp_path), write_fashion(tmp_path), write_cifar(tmp_path)
    monkeypatch.setenv(local.ENV, str(tmp_path))
    for name in ("nmnist", "shd", "dvs-gesture", "fashion-mnist", "cifar10"):
        assert len(catalog.load(name).train_y) > 0
    with pytest.raises(FileNotFoundError):  # an empty folder is an error, never a download
        catalog.load("nmnist", root=tmp_path / "empty")


# --------------------------------------------------------------------------------------- against Tonic


def test_shd_and_gesture_events_match_tonics_readers(tmp_path):
    tonic = pytest.importorskip("tonic")
    write_shd(tmp_path), write_gesture(tmp_path)
    (tmp_path / "SHD" / "shd_train.h5.zip").write_bytes(b"")  # Tonic checks that its archive is there
    theirs = tonic.datasets.SHD(str(tmp_path), train=True)
    ours, labels = shd.read_shd(tmp_path / "SHD" / "shd_train.h5")
    for i, ev in enumerate(ours):
        t_ev, t_label = theirs[i]
        assert np.array_equal(ev["x"], t_ev["x"]) and np.array_equal(ev["t"], t_ev["t"]) and labels[i] == t_label
    from tonic.transforms import ToFrame

    g = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent" / "10.npy"
    ev = dvs_gesture.read_gesture_file(g)
    t_ev = np.load(g)
    t_ev[:, 3] *= 1000
    t_ev = np.lib.recfunctions.unstructured_to_structured(t_ev, tonic.datasets.DVSGesture.dtype)
    for f in ("x", "y", "p", "t"):
        assert np.array_equal(ev[f], t_ev[f])
    ours_frames = data.frames.bin_by_time(ev, 4, dvs_gesture.SENSOR, 0, 2_000_000)
    tonic_frames = ToFrame(dvs_gesture.SENSOR, time_window=500_000, start_time=0, end_time=2_000_000)(t_ev)
    assert np.array_equal(ours_frames, tonic_frames)


# ---------------------------------------------------------------------------------- baselines and runner


def test_baseline_architecture_follows_the_data(tmp_path, monkeypatch):
    write_shd(tmp_path), write_fashion(tmp_path)
    monkeypatch.setenv(local.ENV, str(tmp_path))
    mlp = baselines.on_data("mlp-direct4", "shd")
    assert mlp.kwargs["in_features"] == 700 and mlp.kwargs["num_classes"] == 3 and isinstance(mlp.encoder, data.Frames)
    assert mlp.encoder.T == 4 and mlp.dataset == "shd"
    with pytest.raises(ValueError, match="conv-direct4.*at least 4 x 4.*'shd' gives \\[1, 1, 700\\].*mlp-direct4"):
        baselines.on_data("conv-direct4", "shd")
    events = baselines.on_data("conv-events", "fashion-mnist")  # an event baseline on images: Direct input
    assert events.kwargs["in_shape"] == (1, 28, 28) and events.encoder == data.encoding.Direct(8)
    assert baselines.on_data("conv-direct4", "mnist1k") is baselines.BASELINES["conv-direct4"]  # same images
    assert not baselines.retrains("conv-ann", "mnist1k") and baselines.retrains("conv-ann", "fashion-mnist")


def test_bench_on_a_local_data_set_end_to_end(tmp_path, monkeypatch):
    """`snncomp bench --data fashion-mnist` on fixture files: the board's baseline and its ANN are trained on
    them (cached under keys that hold the data set and its files' identity), and a run is measured there."""
    write_fashion(tmp_path / "data")
    monkeypatch.setenv("SNNCOMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(local.ENV, raising=False)
    from snncomp.kb import cli

    out = tmp_path / "board.jsonl"
    argv = ["bench", "--data", "fashion-mnist", "--data-root", str(tmp_path / "data"), "--only", "uniform-ptq",
            "--seeds", "0", "--output", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    rows = [r for r in runner.Store(out).latest().values()]
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["data"] == "fashion-mnist"
    assert rows[0]["key"] == "uniform-ptq@conv-direct4/fashion-mnist/seed0#" + rows[0]["key"].rsplit("#", 1)[1]
    assert 0.0 <= rows[0]["accuracy"] <= 1.0 and rows[0]["steps"][0]["method"] == "start"
    trained = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache" / "baselines").glob("*.pt"))
    assert trained == ["conv-ann@fashion-mnist-seed0", "conv-direct4@fashion-mnist-seed0"]
    model, enc = baselines.trained("conv-direct4", 0, "fashion-mnist")  # loaded, not retrained
    assert model.in_shape == (1, 28, 28) and enc == data.encoding.Direct(4)
    key = baselines.on_data("conv-direct4", "fashion-mnist").key(0)
    f = tmp_path / "data" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    baselines._local.cache_clear()
    assert baselines.on_data("conv-direct4", "fashion-mnist").key(0) != key  # changed files: other weights
    assert cli.main(["bench", "--data", "cifar10", "--data-root", str(tmp_path / "data"), "--seeds", "0",
                     "--output", str(out)]) == 2  # no CIFAR-10 folder: a clear error before any training


def test_runner_executes_a_run_on_local_data_with_a_custom_run_function(tmp_path, monkeypatch):
    write_fashion(tmp_path / "data")
    monkeypatch.setenv("SNNCOMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(local.ENV, str(tmp_path / "data"))
    recipe = recipes.Recipe(name="ptq", steps=(chain.Step("uniform-ptq", {}),))
    run = runner.Run(recipe, "mlp-direct4", 0, "fashion-mnist")
    rows = runner.execute([run], tmp_path / "s.jsonl", run_fn=shapes_run, prepare=True, progress=False)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    assert rows[0]["steps"][0]["train"] == [21, 1, 28, 28] and rows[0]["steps"][0]["val"] == 3
    assert rows[0]["steps"][0]["in_features"] == 784 and rows[0]["steps"][0]["classes"] == 3
    with pytest.raises(KeyError, match="unknown data set 'fashion'"):
        runner.Run(recipe, "mlp-direct4", 0, "fashion")


def shapes_run(run: runner.Run, device: str) -> dict:
    """A run that only looks at what the runner hands it: the baseline trained on the run's data, and the data."""
    model, _ = baselines.trained(run.baseline, run.seed, run.data)
    s = baselines.split(run.baseline, run.data)
    return {"steps": [{"step": None, "method": "start", "train": list(s.train_x.shape), "val": len(s.val_y),
                       "in_features": model.blocks[0].fc.in_features, "classes": model.head.out_features}]}


def test_board_on_another_data_set_leaves_out_teachers_of_other_images():
    full = runner.board(seeds=(0,))
    moved = runner.board(seeds=(0,), data="fashion-mnist")
    taught = [r.recipe.name for r in full if any("teacher" in s.options for s in r.recipe.steps)]
    assert taught and all(r.data == "fashion-mnist" for r in moved)
    assert not [r for r in moved if any("teacher" in s.options for s in r.recipe.steps)]
    assert len(moved) == len(full) - len(taught)
    assert all(r.data == "mnist1k" for r in runner.board(seeds=(0,), data="mnist1k"))  # same images: teachers kept
    assert len(runner.board(seeds=(0,), data="mnist1k")) == len(full)


def test_balanced_subset_and_binning_checks():
    assert local.balanced([0, 0, 0, 1, 1, 2], 4).tolist() == [0, 1, 3, 5]
    assert local.balanced([0, 1], None).tolist() == [0, 1]
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        local.balanced([0, 1, 2], 0)
    ev = np.zeros(2, dtype=data.sensor.EVENT_DTYPE)
    ev["t"] = [0, 99]
    assert data.frames.bin_by_time(ev, 2, (34, 34, 2), 0, 100)[:, 0, 0, 0].tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"timestamps \[0, 99\] us outside \[0, 50\)"):
        data.frames.bin_by_time(ev, 2, (34, 34, 2), 0, 50)
    ev["x"] = [0, 40]
    with pytest.raises(ValueError, match="outside the sensor"):
        data.frames.bin_by_time(ev, 2, (34, 34, 2), 0, 100)
