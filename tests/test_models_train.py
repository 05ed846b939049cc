import pytest
import torch

from snncomp import data, models, train
from snncomp.data import encoding


@pytest.fixture(scope="module")
def digits():
    return data.digits()


def test_conv_snn_shapes_and_rank_errors():
    m = models.conv_snn()
    assert m(torch.rand(3, 2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"expected input \[T, B, 1, 28, 28\]"):
        m(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="expected 784 input features"):
        models.mlp_snn()(torch.rand(2, 2, 100))


def test_conv_snn_hidden_dense_stage():
    compact, wide = models.conv_snn(), models.conv_snn(hidden=(256,))
    # the default is the compact baseline unchanged: same names, same seeded weights, same cache key
    assert list(compact.state_dict()) == ["blocks.0.conv.weight", "blocks.0.bn.weight", "blocks.0.bn.bias",
                                          "blocks.0.bn.running_mean", "blocks.0.bn.running_var",
                                          "blocks.0.bn.num_batches_tracked", "blocks.0.neuron.tau",
                                          "blocks.0.neuron.threshold", "blocks.1.conv.weight", "blocks.1.bn.weight",
                                          "blocks.1.bn.bias", "blocks.1.bn.running_mean", "blocks.1.bn.running_var",
                                          "blocks.1.bn.num_batches_tracked", "blocks.1.neuron.tau",
                                          "blocks.1.neuron.threshold", "head.weight", "head.bias"]
    assert torch.equal(compact.blocks[1].conv.weight, wide.blocks[1].conv.weight)
    from snncomp import baselines

    # the cache key changes with the spec and with the numerical environment that trains it (issue 19):
    # the CPU kernels and the thread count change the weights a seed gives
    spec, env = baselines.BASELINES["conv-direct4"], baselines.environment()
    assert set(env) == {"torch", "cpu_capability", "threads", "device"}
    assert spec.key(0) == spec.key(0, env) != spec.key(1, env)
    assert spec.key(0, {**env, "cpu_capability": "AVX2" if env["cpu_capability"] != "AVX2" else "AVX512"}) != spec.key(0, env)
    assert spec.key(0, {**env, "threads": env["threads"] + 1}) != spec.key(0, env)
    assert spec.key(0, {**env, "device": "cuda"}) != spec.key(0, env)
    assert wide.blocks[2].fc.in_features == 32 * 7 * 7 and wide.head.in_features == 256
    assert sum(m.weight.numel() for m in (wide.blocks[0].conv, wide.blocks[1].conv, wide.blocks[2].fc, wide.head)) \
        == 144 + 4608 + 1568 * 256 + 2560
    assert wide(torch.rand(3, 2, 1, 28, 28)).shape == (2, 10)
    assert isinstance(models.conv_ann(hidden=(256,)).blocks[2].neuron, torch.nn.ReLU)
    with pytest.raises(ValueError, match="hidden must be a tuple of positive ints"):
        models.conv_snn(hidden=(0,))


def test_direct_input_shortcut_is_exact():
    m = models.conv_snn(seed=3).eval()
    x = torch.rand(2, 1, 28, 28)
    fast = m(encoding.direct(x, 4))  # expanded view -> first layer once
    slow = m(encoding.direct(x, 4).contiguous())  # materialised -> first layer per step
    assert torch.allclose(fast, slow, atol=1e-6)


def test_same_seed_same_model_and_training(digits):
    cfg = train.TrainConfig(epochs=1, batch_size=128, seed=5, progress=False)
    runs = []
    for _ in range(2):
        m = models.conv_snn(digits.train_x.shape[1:], channels=(4, 8), seed=1)
        h = train.fit(m, digits, encoding.Rate(3), cfg)
        runs.append((h.final["loss"], [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_mlp_snn_learns_digits(digits):
    m = models.mlp_snn(64, (64,), seed=0)
    h = train.fit(m, digits, encoding.Direct(4), train.TrainConfig(epochs=4, progress=False))
    assert h.final["test_acc"] > 0.85


def test_loss_terms_and_hooks_are_called(digits):
    calls = {"term": 0, "after_backward": 0, "after_step": 0, "after_epoch": 0}

    class Count(train.Hook):
        def after_backward(self, model, step):
            assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
            calls["after_backward"] += 1

        def after_step(self, model, step):
            calls["after_step"] += 1

        def after_epoch(self, model, epoch):
            calls["after_epoch"] += 1

    def spike_term(step):
        calls["term"] += 1
        assert step.spikes and all(s[0].shape[0] == 2 for s in step.spikes.values())  # [T=2, B, ...]
        return 0.0 * sum(s[0].mean() for s in step.spikes.values())

    m = models.mlp_snn(64, (16,))
    small = data.Split(digits.train_x[:256], digits.train_y[:256], digits.test_x[:64], digits.test_y[:64])
    train.fit(m, small, encoding.Direct(2), train.TrainConfig(epochs=2, batch_size=128, progress=False),
              loss_terms=[spike_term], hooks=[Count()])
    assert calls == {"term": 4, "after_backward": 4, "after_step": 4, "after_epoch": 2}


def test_bad_config():
    with pytest.raises(ValueError, match="schedule"):
        train.TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="neuron kind"):
        models.conv_snn(neuron="lstm")


def test_patience_stops_and_restores_the_best_epoch():
    """Early stopping: training stops `patience` epochs after the best validation accuracy and puts the
    best epoch's weights back; with no validation part it refuses."""
    import dataclasses

    from snncomp import data as data_mod, models, train
    from snncomp.data import encoding

    split = data_mod.digits().with_validation(0.2, 0)
    model = models.mlp_snn(64, hidden=(16,), seed=0)
    enc = encoding.Direct(2)
    config = train.TrainConfig(epochs=12, lr=0.05, patience=1, progress=False)
    history = train.fit(model, split, enc, config, evaluate_test=False)
    last = history.epochs[-1]
    vals = [r["val_acc"] for r in history.epochs]
    assert last["stopped"] == len(vals) - 1 and vals[last["best_epoch"]] == max(vals)
    assert last["stopped"] == config.epochs - 1 or last["stopped"] - last["best_epoch"] == 1
    assert train.evaluate(model, split.val_x, split.val_y, enc) == max(vals)  # the best weights are back
    assert repr(config) == repr(dataclasses.replace(config, patience=0))  # cache keys of other budgets unchanged
    with pytest.raises(ValueError, match="validation part"):
        train.fit(model, data_mod.digits(), enc, config)


def test_fit_takes_a_device_and_draws_codes_on_the_cpu():
    """`fit(device=...)` trains on that device with the same rate codes as on the CPU (`train.encode` draws
    them on the CPU); on this CPU-only check both runs are on the CPU and must agree exactly, and a CUDA run
    is compared where a GPU exists."""
    split = data.digits().with_validation(0.2, 0)
    enc = encoding.Rate(3)
    config = train.TrainConfig(epochs=1, lr=0.01, progress=False)
    a = models.mlp_snn(64, hidden=(16,), seed=0)
    b = models.mlp_snn(64, hidden=(16,), seed=0)
    ha = train.fit(a, split, enc, config, evaluate_test=False)
    hb = train.fit(b, split, enc, config, evaluate_test=False, device="cpu")
    assert ha.final["loss"] == hb.final["loss"] and ha.final["val_acc"] == hb.final["val_acc"]
    if torch.cuda.is_available():
        c = models.mlp_snn(64, hidden=(16,), seed=0)
        hc = train.fit(c, split, enc, config, evaluate_test=False, device="cuda")
        assert abs(hc.final["loss"] - ha.final["loss"]) < 1e-3
