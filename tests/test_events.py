"""Synthetic N-MNIST-like event data: the streams, their binning with Tonic, the N-MNIST file reader,
the frames encoder and the event baseline's wiring."""

import numpy as np
import pytest
import torch

from snncomp import baselines, data, models, train


@pytest.fixture(scope="module")
def images():
    s = data.mnist5k()
    return s.train_x[:6], s.train_y[:6]


@pytest.fixture(scope="module")
def noisy():
    return data.sensor.Saccades(threshold_sigma=0.03, refractory_us=2_000, noise_hz=5.0)


@pytest.fixture(scope="module")
def streams(images, noisy):
    return {"clean": data.sensor.generate(*images), "noisy": data.sensor.generate(*images, config=noisy, seed=3)}


def test_tonic_layout_and_sensor():
    io = pytest.importorskip("tonic.io")
    assert data.sensor.EVENT_DTYPE == io.make_structured_array(np.arange(1), np.arange(1), np.arange(1), np.arange(1)).dtype


@pytest.mark.parametrize("which", ["clean", "noisy"])
def test_events_inside_canvas_and_window_and_sorted(streams, which):
    ev = streams[which]
    assert len(ev) == 6 and ev.counts().min() > 500
    for i in range(len(ev)):
        e = ev[i]
        assert e.dtype == data.sensor.EVENT_DTYPE
        assert e["x"].min() >= 0 and e["x"].max() < 34 and e["y"].min() >= 0 and e["y"].max() < 34
        assert e["t"].min() >= 0 and e["t"].max() < ev.duration_us == 300_000
        assert np.all(np.diff(e["t"]) >= 0)
        assert 0.3 < e["p"].mean() < 0.7  # a moving edge makes both polarities
    # timestamps are spread inside the 5 ms sampling steps, not stacked on the sampling instants
    assert np.mean(ev[0]["t"] % 5_000 != 0) > 0.9


def test_each_saccade_makes_events(streams):
    t = streams["clean"][0]["t"]
    per_saccade = np.bincount(t // 100_000, minlength=3)
    assert (per_saccade > 0.2 * len(t)).all()


def test_same_seed_same_stream_and_sample_alone_equals_in_batch(images, streams, noisy):
    again = data.sensor.generate(*images, config=noisy, seed=3, chunk=4)
    assert all(np.array_equal(again[i], streams["noisy"][i]) for i in range(6))
    alone = data.sensor.generate(images[0][2:3], config=noisy, seed=3, first=2)
    assert np.array_equal(alone[0], streams["noisy"][2])
    other = data.sensor.generate(*images, config=noisy, seed=4)
    assert not np.array_equal(other[0], streams["noisy"][0])


def test_refractory_period_holds(images):
    ev = data.sensor.generate(images[0][:2], config=data.sensor.Saccades(refractory_us=10_000))
    e = ev[0]
    pix = e["y"].astype(int) * 34 + e["x"]
    order = np.lexsort((e["t"], pix))
    same = pix[order][1:] == pix[order][:-1]
    assert same.any() and np.diff(e["t"][order])[same].min() >= 10_000


def test_shift_matches_scipy():
    from scipy.ndimage import shift

    r = np.random.default_rng(0).random((2, 34, 34))
    for dy, dx in [(0.3, 1.7), (-1.2, 0.5), (2.0, -2.0), (-0.01, 1.99)]:
        theirs = shift(r, (0, dy, dx), order=1, mode="grid-constant", cval=0.0, prefilter=False)
        assert np.allclose(data.sensor._shift(r, dy, dx), theirs, atol=1e-12)


@pytest.mark.parametrize("by", ["time", "count"])
@pytest.mark.parametrize("T", [1, 3, 10])
def test_binning_conserves_the_count(streams, by, T):
    pytest.importorskip("tonic")
    ev = streams["noisy"]
    for i in range(3):
        e = ev[i]
        f = data.frames.to_frames(e, T, by, ev.duration_us)
        assert f.shape == (T, 2, 34, 34)
        if by == "time":  # every event in exactly one window
            assert f.sum() == len(e)
            assert f[:, 1].sum() == e["p"].sum()  # channel 1 is ON
        else:  # Tonic's event bins hold N // T events each; the last N mod T events are left out
            assert f.sum(axis=(1, 2, 3)).tolist() == [len(e) // T] * T
            assert f[:, 1].sum() == e["p"][: T * (len(e) // T)].sum()


def test_binning_by_time_puts_events_in_their_window(streams):
    pytest.importorskip("tonic")
    e = streams["clean"][0]
    f = data.frames.to_frames(e, 3, "time", 300_000)
    assert f.sum(axis=(1, 2, 3)).tolist() == np.bincount(e["t"] // 100_000, minlength=3).tolist()
    with pytest.raises(ValueError, match="divisible"):
        data.frames.to_frames(e, 7, "time", 300_000)
    with pytest.raises(ValueError, match="'time' or 'count'"):
        data.frames.to_frames(e, 3, "space", 300_000)


def test_denoise_from_tonic_removes_isolated_noise(images):
    transforms = pytest.importorskip("tonic.transforms")
    only_noise = data.sensor.generate(np.zeros((1, 28, 28)), config=data.sensor.Saccades(noise_hz=20.0))[0]
    assert len(only_noise) > 100  # a black image moves without any edge: every event is noise
    assert len(transforms.Denoise(filter_time=1_000)(only_noise)) < 0.2 * len(only_noise)


def test_frames_encoder_merges_bins_and_clips():
    x = torch.zeros(2, 4, 2, 34, 34, dtype=torch.uint8)
    x[0, 0, 1, 3, 4] = 3
    x[0, 3, 0, 5, 6] = 1
    full = data.Frames(4)(x)
    assert full.shape == (4, 2, 2, 34, 34) and full.dtype == torch.float32
    assert full.sum() == 2 and set(full.unique().tolist()) <= {0.0, 1.0}
    merged = data.Frames(2, binary_spikes=False)(x)
    assert merged[0, 0, 1, 3, 4] == 3 and merged[1, 0, 0, 5, 6] == 1 and merged.sum() == 4
    assert data.Frames(1).binary and not data.Frames(1, binary_spikes=False).binary
    with pytest.raises(ValueError, match="only 4 bins"):
        data.Frames(8)(x)


def test_bad_saccades_and_images_are_named():
    with pytest.raises(ValueError, match="leaves the 34 x 34 canvas"):
        data.sensor.Saccades(path=((0, 0), (5, 0)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.sensor.generate(np.full((1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="28 x 28"):
        data.sensor.generate(np.zeros((1, 30, 30)))


def _write_bin(path, recs):
    """N-MNIST records: x, y, (p << 7 | t >> 16), t >> 8, t (timestamps below 2^23 us)."""
    raw = bytearray()
    for x, y, p, t in recs:
        raw += bytes([x, y, (p << 7) | (t >> 16) & 127, (t >> 8) & 255, t & 255])
    path.write_bytes(bytes(raw))


def test_read_real_nmnist_file_and_folder(tmp_path):
    recs = [(1, 2, 1, 10), (33, 0, 0, 70_000), (0, 240, 0, 0), (5, 6, 1, 99_000)]  # y = 240: overflow
    for digit, rows in (("3", recs), ("7", recs[:2])):
        (tmp_path / digit).mkdir()
        _write_bin(tmp_path / digit / "00001.bin", rows)
    e = data.nmnist.read_nmnist_file(tmp_path / "3" / "00001.bin")
    assert e.dtype == data.sensor.EVENT_DTYPE
    assert e["x"].tolist() == [1, 33, 5] and e["y"].tolist() == [2, 0, 6] and e["p"].tolist() == [1, 0, 1]
    assert e["t"].tolist() == [10, 70_000, 99_000 + 2 ** 13]
    io = pytest.importorskip("tonic.io")
    theirs = io.read_mnist_file(str(tmp_path / "3" / "00001.bin"), dtype=data.sensor.EVENT_DTYPE)
    assert np.array_equal(e, theirs)
    ev = data.nmnist.read_nmnist(tmp_path)
    assert len(ev) == 2 and ev.labels.tolist() == [3, 7] and ev.name == "N-MNIST" and ev.duration_us == 200_000
    assert np.array_equal(ev[1], e[:2])
    (tmp_path / "3" / "bad.bin").write_bytes(b"123")
    with pytest.raises(ValueError, match="bad.bin"):
        data.nmnist.read_nmnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="no <digit>"):
        data.nmnist.read_nmnist(tmp_path / "3")


def test_event_baseline_is_wired():
    spec = baselines.BASELINES["conv-events"]
    assert data.catalog.get(spec.dataset).loader is data.nmnist_like and isinstance(spec.encoder, data.Frames)
    model = spec.build(seed=0, **spec.kwargs)
    x = torch.zeros(3, 16, 2, 34, 34, dtype=torch.uint8)
    x[:, ::3, :, 10:20, 10:20] = 1
    assert model(spec.encoder(x)).shape == (3, 10)


def test_fit_on_event_frames(images):
    """`train.fit` trains on a small `Split` of event frames through the `Frames` encoder."""
    pytest.importorskip("tonic")
    x, y = images
    ev = data.sensor.generate(x, y)
    f = torch.from_numpy(data.frames.frames(ev, 4, progress=False))
    split = data.Split(f, y, f, y, "nmnist-like")
    model = models.conv_snn(in_shape=(2, 34, 34), channels=(4,), seed=0)
    hist = train.fit(model, split, data.Frames(2), train.TrainConfig(epochs=2, batch_size=3))
    assert len(hist.epochs) == 2 and np.isfinite(hist.final["loss"])


def test_cache_is_the_same_on_any_number_of_workers(tmp_path, monkeypatch):
    """`nmnist_like` generates its cache in chunks on several processes; the frames do not depend on how many."""
    x = data.mnist5k().train_x[:12]
    monkeypatch.setattr(data.synthetic, "_mnist", lambda test_fraction, seed: (x, torch.arange(12) % 10, 8))
    monkeypatch.setattr(data.synthetic, "CHUNK", 5)
    got = []
    for workers in (1, 2):
        monkeypatch.setattr(data.synthetic, "cache_dir", lambda w=workers: tmp_path / f"w{w}")
        (tmp_path / f"w{workers}").mkdir()
        got.append(data.nmnist_like(T=4, workers=workers, progress=False))
    assert got[0].train_x.shape == (8, 4, 2, 34, 34) and got[0].test_x.shape == (4, 4, 2, 34, 34)
    assert torch.equal(got[0].train_x, got[1].train_x) and torch.equal(got[0].test_x, got[1].test_x)
    alone = data.frames.frames(data.sensor.generate(x[5:6], config=data.sensor.Saccades(), seed=0, first=5), 4)
    assert np.array_equal(got[1].train_x[5].numpy(), alone[0])


def test_default_sensor_has_v2e_threshold_spread(images):
    """The default sensor draws per-pixel thresholds with v2e's spread (sigma 0.03), so its streams differ
    from an ideal sensor's (sigma 0); the committed event results were made before this default."""
    assert data.sensor.Saccades().threshold_sigma == 0.03
    x = images[0][:2]
    spread = data.sensor.generate(x, seed=0)
    ideal = data.sensor.generate(x, config=data.sensor.Saccades(threshold_sigma=0.0), seed=0)
    assert len(spread.x) != len(ideal.x) or not np.array_equal(spread.t, ideal.t)
    assert 0.5 < spread.counts().sum() / ideal.counts().sum() < 2.0  # same sensor, slightly different events


def test_event_baseline_cache_key_follows_the_sensor(monkeypatch):
    from snncomp import baselines

    spec, other = baselines.BASELINES["conv-events"], baselines.BASELINES["conv-direct4"]
    before, other_before = spec.key(0), other.key(0)
    monkeypatch.setattr(data.sensor.Saccades, "__repr__", lambda self: "Saccades(another sensor)")
    assert spec.key(0) != before  # weights trained on other frames are never reused
    assert other.key(0) == other_before  # other data sets unaffected
