"""Spike reduction: regularisers, the synaptic-operation loss against the metric, early-exit guarantees,
one spike per neuron under temporal coding, and the errors for bad input."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from snncomp import data, metrics, models, spikes
from snncomp.data import encoding
from snncomp import spike_reduction as sr
from snncomp.train import Step, TrainConfig, fit


@pytest.fixture(scope="module")
def tiny(tiny_split):  # here only the data (tests/conftest.py)
    return tiny_split


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> Step:
    with spikes.record(model) as rec, spikes.record_inputs(model) as ins:
        logits = model(x)
    y = torch.zeros(x.shape[1], dtype=torch.long) if y is None else y
    return Step(model, x, y, logits, rec, 0, 0, ins)


RATE_TERMS = [sr.spike_rate_l1, sr.spike_rate_l2, sr.target_firing_rate]


@pytest.mark.parametrize("term", RATE_TERMS, ids=lambda f: f.__name__)
def test_rate_regularisers_are_zero_for_a_silent_network(term, tiny):
    silent = models.conv_snn((1, 8, 8), channels=(4, 8), threshold=1e6, seed=0)
    step = _step(silent, encoding.Rate(4)(tiny.train_x[:16], torch.Generator().manual_seed(0)))
    assert all(s.sum() == 0 for calls in step.spikes.values() for s in calls)
    assert term(step).item() == 0.0


def test_synop_count_is_zero_without_input_spikes():
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    step = _step(net, torch.zeros(4, 3, 1, 8, 8))
    assert sr.synops_count(step).item() == 0.0
    assert sr.synops_loss(step, target=50.0).item() == 1.0  # ((0 - S0) / S0)^2


def test_synop_loss_is_the_squared_relative_distance_to_its_target(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), threshold=0.3, seed=0)
    step = _step(net, encoding.Rate(4)(tiny.train_x[:16], torch.Generator().manual_seed(0)))
    s = sr.synops_count(step).item()
    assert s > 0
    for target in (s / 4, s, 2 * s):
        assert sr.synops_loss(step, target=target).item() == pytest.approx(((s - target) / target) ** 2, rel=1e-6)
    # its gradient is the count's times 2 (S - S0) / S0^2: it lowers the count above the target, raises it below
    w = net.blocks[0].conv.weight
    (g_count,) = torch.autograd.grad(sr.synops_count(step), w, retain_graph=True)
    for target in (s / 4, 4 * s):
        (g,) = torch.autograd.grad(sr.synops_loss(step, target=target), w, retain_graph=True)
        assert torch.allclose(g, 2 * (s - target) / target**2 * g_count, rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match="synops-loss: target must be a positive"):
        sr.synops_loss(step, target=0.0)


@pytest.mark.parametrize("term", [sr.spike_rate_l1, sr.spike_rate_l2, sr.target_firing_rate, sr.synops_count,
                                  functools.partial(sr.synops_loss, target=1.0)],
                         ids=["l1", "l2", "target-rate", "synops-count", "synops-loss"])
def test_regularisers_push_rates_down(term, tiny):
    """Gradient descent on the regulariser alone (the surrogate gradient of the spikes) quietens a
    network that fires a lot."""
    net = models.conv_snn((1, 8, 8), channels=(4, 8), threshold=0.3, seed=0)
    x = encoding.Rate(4)(tiny.train_x[:64], torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    rates = []
    for _ in range(20):
        step = _step(net, x)
        rates.append(sr.spike_rate_l1(step).item())
        opt.zero_grad()
        term(step).backward()
        opt.step()
    assert rates[0] > 0.05 and rates[-1] < 0.6 * rates[0], rates


def test_training_with_a_regulariser_fires_less(tiny):
    enc = encoding.Rate(4)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=5e-3, progress=False)
    plain = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    fit(plain, tiny, enc, cfg, evaluate_test=False)
    quiet = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    fit(quiet, tiny, enc, cfg, loss_terms=[sr.weighted(sr.spike_rate_l1, 5.0)], evaluate_test=False)
    assert metrics.measure(quiet, tiny.test_x, enc).spikes_per_sample < \
        0.5 * metrics.measure(plain, tiny.test_x, enc).spikes_per_sample


def test_target_rate_pushes_only_samples_above_the_bound(tiny):
    """stork's UpperBoundL2 on the population rate: a squared hinge per sample, averaged over the batch."""
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    step = _step(net, encoding.Rate(4)(tiny.train_x[:16], torch.Generator().manual_seed(0)))
    per_sample = {k: v[0].detach().transpose(0, 1).flatten(1).mean(1) for k, v in step.spikes.items()}  # [B]
    high = {k: float(v.max()) + 0.01 for k, v in per_sample.items()}
    assert sr.target_firing_rate(step, target=high).item() == 0.0
    first = next(iter(per_sample))
    r = per_sample[first]
    assert sr.target_firing_rate(step, target={first: 0.0}).item() == pytest.approx(float((r**2).mean()), rel=1e-5)
    bound = float(r.median())  # only the samples above the bound count, each by its own excess
    want = float((torch.clamp(r - bound, min=0) ** 2).mean())
    assert want > 0 and sr.target_firing_rate(step, target={first: bound}).item() == pytest.approx(want, rel=1e-5)
    # not the hinge of the batch mean: that would differ whenever some samples are below the bound
    assert want != pytest.approx(max(float(r.mean()) - bound, 0.0) ** 2, rel=1e-3)


def test_bad_target_rates_are_named_errors(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    step = _step(net, encoding.Rate(2)(tiny.train_x[:4]))
    with pytest.raises(ValueError, match=r"layer 'blocks.0.neuron'.*got -0.1"):
        sr.target_firing_rate(step, target={"blocks.0.neuron": -0.1})
    with pytest.raises(ValueError, match="must lie in"):
        sr.target_firing_rate(step, target=-0.5)
    with pytest.raises(KeyError, match="no spiking layer named"):
        sr.target_firing_rate(step, target={"nope": 0.1})
    with pytest.raises(ValueError, match="weight must be >= 0"):
        sr.weighted(sr.spike_rate_l1, -1.0)


# ----------------------------------------------------------------------------- synop loss = metric


def test_synop_loss_on_hand_worked_layers():
    # linear: weight columns hold 1, 0 and 2 non-zero weights -> fan-out (1, 0, 2)
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    assert sr.fan_out(lin, (3,)).tolist() == [1.0, 0.0, 2.0]
    x = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]], requires_grad=True)
    ops, binary = sr.layer_synops(lin, x)
    assert binary and ops.item() == 3 + 2  # (1 + 0 + 2) + (0 + 2)
    ops.backward()
    assert x.grad.tolist() == [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]]  # d SynOps / d x_i = f_i
    assert metrics.synops(nn.Sequential(lin), x.detach())["0"].acs == 5
    # 3x3 all-ones kernel, padding 1, on a 3x3 map: a corner input reaches 4 outputs, an edge 6, the centre 9
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    assert sr.fan_out(conv, (1, 3, 3))[0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    corner = torch.zeros(1, 1, 3, 3)
    corner[0, 0, 0, 0] = 1
    assert sr.layer_synops(conv, corner)[0].item() == 4
    # a zero weight (the kernel's centre) removes one connection from every input
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] = 0
    spikes_in = (torch.rand(5, 1, 3, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    assert sr.layer_synops(conv, spikes_in)[0].item() == metrics.synops(nn.Sequential(conv), spikes_in)["0"].acs


@pytest.mark.parametrize("enc", [encoding.Rate(4), encoding.Direct(4)], ids=["rate", "direct"])
def test_synop_loss_equals_the_metric_on_a_seeded_network(enc, tiny):
    # counting needs no training: a seeded untrained network (low threshold, so every layer gets spikes)
    model = models.conv_snn((1, 8, 8), channels=(4, 8), threshold=0.3, seed=0)
    x = tiny.test_x[:40]
    report = metrics.measure(model, x, enc, batch_size=40)  # one batch: codes drawn from seed 1234
    model.eval()
    inputs = enc(x, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        step = _step(model, inputs)
        count = sr.count_synops(model, step.synaptic_inputs, x.shape[0])
    assert count.acs.item() == pytest.approx(report.effective_acs, rel=1e-9)
    assert count.macs.item() == pytest.approx(report.effective_macs, rel=1e-9)
    assert sr.synops_count(step).item() == pytest.approx(report.effective_acs + report.effective_macs, rel=1e-6)
    assert sr.synops_count(step).item() > 0
    # a Step built without recorded inputs re-runs the model and gives the same count
    bare = Step(model, inputs, step.targets, step.logits, step.spikes, 0, 0)
    assert sr.synops_count(bare).item() == pytest.approx(sr.synops_count(step).item(), rel=1e-6)


# ----------------------------------------------------------------------------- early exit


@pytest.fixture(scope="module")
def rate_net():
    torch.manual_seed(0)
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0).eval()


def test_prefix_is_the_running_sum_and_matches_shorter_runs(rate_net, tiny):
    x = encoding.Rate(6)(tiny.test_x[:8], torch.Generator().manual_seed(0))
    with torch.no_grad():
        prefix = sr.prefix_logits(rate_net, x)
        per_step = sr.step_logits(rate_net, x)
        for t in range(1, 7):
            assert torch.allclose(prefix[t - 1], per_step[:t].sum(0), atol=1e-5)  # SEENN's partial_logits
            assert torch.allclose(prefix[t - 1], t * rate_net(x[:t]), atol=1e-5)  # t times the t-step answer


def test_exit_confidence_is_the_softmax_of_the_running_sum():
    """SEENN's test_snn.py: softmax of the summed readout, strictly above the threshold; the mean would
    make the softmax t times flatter and exit later."""
    per_step = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]]])  # [T=3, B=1, 2], the same every step
    prefix = per_step.cumsum(0)
    conf = torch.softmax(prefix, -1).amax(-1)[:, 0]  # 0.731, 0.881, 0.953
    steps, chosen = sr.exit_steps(prefix, 0.85)
    assert steps.tolist() == [2] and torch.equal(chosen, prefix[1])
    assert conf[1] > 0.85 > torch.softmax(per_step.cumsum(0) / 2, -1).amax(-1)[1, 0]  # the mean would not exit at 2
    assert sr.exit_steps(prefix, float(conf[1]))[0].tolist() == [3]  # strictly above


@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9, 0.99, 1.0])
def test_early_exit_never_exceeds_T_and_threshold_one_is_full_T(threshold, rate_net, tiny):
    enc = encoding.Rate(6)
    x = enc(tiny.test_x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        wrapped = sr.EarlyExit(rate_net, threshold)
        out = wrapped(x)
        steps = wrapped.last_steps
        assert steps.min() >= 1 and steps.max() <= enc.T
        if threshold == 1.0:
            assert (steps == enc.T).all()
            assert torch.allclose(out, enc.T * rate_net(x), atol=1e-5)  # the summed readout
    report = sr.early_exit_report(rate_net, tiny.test_x, tiny.test_y, enc, threshold)
    assert 1 <= report.average_steps <= enc.T and sum(report.steps_histogram) == 64
    assert report.spikes_per_sample <= report.spikes_full and report.synops_per_sample <= report.synops_full
    if threshold == 1.0:
        assert report.average_steps == enc.T and report.accuracy == report.accuracy_full
        assert report.spikes_per_sample == pytest.approx(report.spikes_full, rel=1e-12)
        assert report.neuron_updates_per_sample == pytest.approx(report.neuron_updates_full, rel=1e-12)
    else:
        assert report.neuron_updates_per_sample == pytest.approx(
            report.neuron_updates_full * report.average_steps / enc.T, rel=1e-9)


def test_early_exit_full_run_counts_match_the_metric(rate_net, tiny):
    enc = encoding.Rate(6)
    report = sr.early_exit_report(rate_net, tiny.test_x, tiny.test_y, enc, 1.0)
    m = metrics.measure(rate_net, tiny.test_x, enc, tiny.test_y)
    assert report.spikes_full == pytest.approx(m.spikes_per_sample, rel=1e-9)
    assert report.synops_full == pytest.approx(m.effective_acs + m.effective_macs, rel=1e-9)
    assert report.neuron_updates_full == pytest.approx(m.neuron_updates, rel=1e-9)
    assert report.accuracy_full == pytest.approx(m.accuracy, abs=1e-12)


def test_calibration_uses_validation_images_only(rate_net, tiny):
    enc = encoding.Rate(6)
    with pytest.raises(ValueError, match="no validation part"):
        sr.calibrate_threshold(rate_net, tiny, enc, (0.5, 0.9))
    split = tiny.with_validation(0.25, seed=0)
    poisoned = data.Split(split.train_x, split.train_y, torch.full_like(split.test_x, float("nan")), split.test_y,
                          split.name, split.val_x, split.val_y)  # test images unusable: they must not be read
    cal = sr.calibrate_threshold(rate_net, poisoned, enc, (0.5, 0.9, 1.0), max_drop=0.5)
    assert all(sum(r.steps_histogram) == len(split.val_y) for r in cal.reports)
    want = sr.early_exit_reports(rate_net, split.val_x, split.val_y, enc, (0.5, 0.9, 1.0))
    assert [r.average_steps for r in cal.reports] == pytest.approx([r.average_steps for r in want])
    ok = [r for r in want if 100 * (r.accuracy_full - r.accuracy) <= 0.5]
    assert cal.threshold == min(ok, key=lambda r: r.average_steps).threshold
    res = sr.confidence_early_exit(rate_net, split, enc, threshold=None, thresholds=(0.5, 0.9, 1.0))
    assert res.info["threshold"] == cal.threshold and res.model.threshold == cal.threshold


def test_tet_loss_is_the_mean_per_step_cross_entropy_plus_mse(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    x = encoding.Rate(4)(tiny.train_x[:16], torch.Generator().manual_seed(0))
    y = tiny.train_y[:16]
    step = _step(net, x, y)
    per_step = sr.step_logits(net, x)
    ce = sum(torch.nn.functional.cross_entropy(per_step[t], y) for t in range(4)) / 4
    mse = ((per_step - 1.0) ** 2).mean()
    assert sr.tet_loss(step).item() == pytest.approx((1 - 1e-3) * ce.item() + 1e-3 * mse.item(), rel=1e-5)
    assert sr.tet_loss(step, lamb=0.0).item() == pytest.approx(ce.item(), rel=1e-5)
    # the mean per-step loss differs from the loss of the mean readout
    assert ce.item() != pytest.approx(torch.nn.functional.cross_entropy(per_step.mean(0), y).item(), rel=1e-3)
    with pytest.raises(ValueError, match="lamb must lie in"):
        sr.tet_loss(step, lamb=2.0)
    res = sr.confidence_early_exit(net, tiny, encoding.Rate(4), tet=True,
                                   train=TrainConfig(epochs=1, progress=False))
    assert res.history and res.history[0]["phase"] == "train"


@pytest.mark.parametrize("bad", [0.0, -0.2, 1.01, 2, True, "0.9"])
def test_bad_thresholds_are_errors(bad, rate_net, tiny):
    with pytest.raises(ValueError, match=r"confidence threshold must lie in \(0, 1\]"):
        sr.EarlyExit(rate_net, bad)
    with pytest.raises(ValueError, match="confidence-early-exit: confidence threshold"):
        sr.confidence_early_exit(rate_net, tiny, encoding.Rate(2), threshold=bad)


# ----------------------------------------------------------------------------- temporal coding


def test_first_spike_lif_fires_at_most_once():
    x = torch.rand(20, 8, 5, generator=torch.Generator().manual_seed(0)) * 3  # strong drive
    out = sr.first_spike_lif(x, 2.0, 1.0)
    assert out.spikes.sum(0).max() == 1 and out.spikes.sum() > 0
    # up to its first spike it is the plain LIF
    from snncomp.neurons import lif

    plain = lif(x, 2.0, 1.0).spikes
    first = (plain.cumsum(0) == 1) & (plain == 1)
    assert torch.equal(out.spikes.bool(), first)


def test_time_to_first_spike_gives_at_most_one_spike_per_neuron(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    res = sr.time_to_first_spike(net, tiny, encoding.Rate(8), train=TrainConfig(epochs=1, progress=False))
    assert isinstance(res.encoder, encoding.Latency) and res.encoder.T == 8
    assert all(isinstance(m, sr.FirstSpikeLIF) for m in (b.neuron for b in res.model.blocks))
    assert sr.max_spikes_per_neuron(res.model, res.encoder(tiny.test_x)) <= 1
    rep = metrics.measure(res.model, tiny.test_x, res.encoder)
    n_neurons = rep.neuron_updates / 8
    assert rep.spikes_per_sample <= n_neurons


# ----------------------------------------------------------------------------- S4NN


def _first_crossing(w: torch.Tensor, t_in: list[int], T: int, theta: float) -> list[int]:
    """Reference forward of one S4NN layer for one sample, by a loop: the first step at which the
    non-leaky potential (the sum of the weights of the inputs that have fired) exceeds theta; T if none."""
    out = []
    for j in range(w.shape[0]):
        t_j = T
        for t in range(T):
            if sum(float(w[j, i]) for i, ti in enumerate(t_in) if ti <= t) > theta:
                t_j = t
                break
        out.append(t_j)
    return out


def _s4nn_reference_grads(net: sr.S4NNet, t_in: list[int], label: int, T: int, gamma: int):
    """S4NN's update for one sample written out as in the paper (the rule, not the code): output error
    e = (target - t)/T normalised, hidden error sum_j e_j w_jh [t_h <= t_j] over fired hidden neurons,
    normalised; dW = e_j [input fired and t_i <= t_j]. Returned as gradients (the update is -lr times them)."""
    w_h, w_o = net.layers[0].weight.detach(), net.layers[1].weight.detach()
    theta = net.threshold
    t_h = _first_crossing(w_h, t_in, T, theta)
    t_o = _first_crossing(w_o, t_h, T, theta)
    target = sr.S4NNLoss(T, gamma).targets(torch.tensor([t_o], dtype=torch.float32), torch.tensor([label]))[0]
    e = (target - torch.tensor(t_o, dtype=torch.float32)) / T
    e = e / e.norm() if e.norm() > 0 else e
    g_o = torch.zeros_like(w_o)
    for j in range(w_o.shape[0]):
        for h in range(w_o.shape[1]):
            if t_h[h] < T and t_h[h] <= t_o[j]:
                g_o[j, h] = e[j]
    d = torch.zeros(w_h.shape[0])
    for h in range(w_h.shape[0]):
        if t_h[h] < T:
            d[h] = sum(float(e[j] * w_o[j, h]) for j in range(w_o.shape[0]) if t_h[h] <= t_o[j])
    d = d / d.norm() if d.norm() > 0 else d
    g_h = torch.zeros_like(w_h)
    for h in range(w_h.shape[0]):
        for i, ti in enumerate(t_in):
            if ti < T and ti <= t_h[h]:
                g_h[h, i] = d[h]
    return t_h, t_o, g_h, g_o


def _s4nn_case(seed: int):
    T, gamma = 16, 3
    net = sr.S4NNet((12, 6, 3), threshold=4.0, init=(1.5, 4.0), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    t_in = [int(v) for v in torch.randint(0, T + 1, (12,), generator=gen)]  # T: the input stays silent
    x = torch.zeros(T, 1, 12)
    for i, ti in enumerate(t_in):
        if ti < T:
            x[ti, 0, i] = 1.0
    return net, x, t_in, T, gamma


@pytest.mark.parametrize("seed", range(6))
def test_s4nn_forward_is_the_first_threshold_crossing(seed):
    net, x, t_in, T, gamma = _s4nn_case(seed)
    with spikes.record(net) as rec:
        scores = net(x)
    t_h, t_o, _, _ = _s4nn_reference_grads(net, t_in, 0, T, gamma)
    for got, want in ((rec["neurons.0"][0][:, 0], t_h), (rec["neurons.1"][0][:, 0], t_o)):
        assert got.sum(0).max() <= 1  # at most one spike per neuron
        times = [int(c.nonzero()[0]) if c.any() else T for c in got.T]
        assert times == want
    fired = torch.tensor(t_o) < T
    assert torch.equal(scores[0][fired], -torch.tensor(t_o, dtype=torch.float32)[fired])
    assert (scores[0][~fired] < -T).all() and (scores[0][~fired] > -T - 1).all()


@pytest.mark.parametrize("seed", range(6))
def test_s4nn_gradient_is_the_papers_update(seed):
    net, x, t_in, T, gamma = _s4nn_case(seed)
    label = seed % 3
    _, _, g_h, g_o = _s4nn_reference_grads(net, t_in, label, T, gamma)
    loss = sr.S4NNLoss(T, gamma)(net(x), torch.tensor([label]))
    loss.backward()
    assert torch.allclose(net.layers[1].weight.grad, g_o, atol=1e-6)
    assert torch.allclose(net.layers[0].weight.grad, g_h, atol=1e-6)


def test_s4nn_batch_gradient_is_the_sum_of_per_sample_updates():
    cases = [_s4nn_case(s) for s in (1, 2)]
    net = cases[0][0]
    x = torch.cat([c[1] for c in cases], dim=1)  # the two samples through the first case's network
    y = torch.tensor([0, 2])
    sr.S4NNLoss(16, 3)(net(x), y).backward()
    want = [_s4nn_reference_grads(net, c[2], int(label), 16, 3) for c, label in zip(cases, y)]
    assert torch.allclose(net.layers[0].weight.grad, want[0][2] + want[1][2], atol=1e-6)
    assert torch.allclose(net.layers[1].weight.grad, want[0][3] + want[1][3], atol=1e-6)


def test_s4nn_relative_targets():
    loss = sr.S4NNLoss(T=10, gamma=3)
    t = torch.tensor([[4.0, 5.0, 9.0, 10.0], [10.0, 10.0, 10.0, 10.0], [2.0, 3.0, 8.0, 10.0]])
    got = loss.targets(t, torch.tensor([1, 2, 0]))
    # the label's target is the earliest spike; others within gamma of it go to t_min + gamma; later ones stay;
    # when no output fires, every target is T and the label's T - gamma
    assert got.tolist() == [[7.0, 4.0, 9.0, 10.0], [10.0, 10.0, 7.0, 10.0], [2.0, 5.0, 8.0, 10.0]]


def test_s4nn_trains_on_digits_with_one_spike_per_neuron():
    """One epoch of online SGD over scikit-learn's digits (1438 images; weights and threshold scaled down
    from the paper's MNIST settings for 64 inputs and T = 32)."""
    split = data.digits()
    res = sr.s4nn(None, split, encoding.Direct(2), T=32, hidden=(64,), threshold=5.0, init=(0.6, 1.0),
                  train=TrainConfig(epochs=1, batch_size=1, lr=0.05, schedule="constant", progress=False))
    assert res.model.layers[0].in_features == 64 and res.encoder == encoding.Latency(32)
    assert sr.max_spikes_per_neuron(res.model, res.encoder(split.test_x)) <= 1
    assert res.info["accuracy"] > 0.5  # chance is 0.1; 0.71 with this seed
    assert res.info["revived_per_epoch"] == [0]  # the last epoch re-draws nothing


def test_s4nn_revives_silent_neurons_with_fresh_weights_except_after_the_last_epoch():
    net = sr.S4NNet((12, 6, 3), threshold=4.0, init=(1.5, 4.0), seed=0)
    start = net.layers[0].weight.detach().clone()
    hook = sr.ReviveSilent(net, samples=10, epochs=2, seed=0)
    hook.counts[0][:] = torch.tensor([0.0, 5, 0, 5, 5, 5])  # neurons 0 and 2 fired for none of the samples
    hook.after_epoch(net, 0)
    w = net.layers[0].weight.detach()
    assert hook.revived == [2] and torch.equal(w[[1, 3, 4, 5]], start[[1, 3, 4, 5]])
    assert not torch.equal(w[0], start[0]) and ((w[[0, 2]] >= 0) & (w[[0, 2]] <= 1.5)).all()
    assert not any(torch.equal(w[i], start[j]) for i in (0, 2) for j in range(6))  # not the initial stream again
    assert (hook.counts[0] == 0).all()
    hook.after_epoch(net, 1)  # the last epoch: nothing re-drawn
    assert hook.revived == [2, 0] and torch.equal(net.layers[0].weight.detach(), w)


def test_s4nn_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        sr.FirstSpikeIF(threshold=0.0)
    with pytest.raises(ValueError, match="init needs one positive upper bound per weight layer"):
        sr.S4NNet((64, 32, 10), init=(5.0,))
    with pytest.raises(ValueError, match="sizes"):
        sr.S4NNet((64,))
    with pytest.raises(ValueError, match="gamma"):
        sr.S4NNLoss(256, gamma=-1)
    with pytest.raises(ValueError, match="expected 64 input features"):
        sr.S4NNet((64, 8, 10))(torch.zeros(4, 2, 63))


# ----------------------------------------------------------------------------- thresholds and attention


def test_learnable_threshold_trains_and_keeps_floor(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    res = sr.learnable_threshold(net, tiny, encoding.Rate(4), min_threshold=0.5,
                                 train=TrainConfig(epochs=1, lr=5e-2, progress=False),
                                 loss_terms=[sr.weighted(sr.spike_rate_l1, 5.0)])
    neuron = res.model.blocks[0].neuron
    assert isinstance(neuron.parametrizations.threshold.original, nn.Parameter)
    assert (neuron.threshold >= 0.5).all() and (neuron.tau >= 1).all()
    # DIET-SNN: one threshold and one leak per layer, reset by subtraction
    for m in (b.neuron for b in res.model.blocks):
        assert m.reset == "soft"
        assert torch.allclose(m.threshold, m.threshold[0].expand_as(m.threshold))
        assert torch.allclose(m.tau, m.tau[0].expand_as(m.tau))
    assert net.blocks[0].neuron.reset == "hard"  # input untouched
    per_channel = sr.learnable_threshold(net, tiny, encoding.Rate(4), per_layer=False, reset=None,
                                         train=TrainConfig(epochs=1, lr=5e-2, progress=False),
                                         loss_terms=[sr.weighted(sr.spike_rate_l1, 5.0)]).model.blocks[0].neuron
    assert per_channel.reset == "hard" and per_channel.threshold.unique().numel() > 1
    assert res.info["threshold_after"] != res.info["threshold_before"]
    assert isinstance(net.blocks[0].neuron.threshold, torch.Tensor) and not isinstance(
        net.blocks[0].neuron.threshold, nn.Parameter)  # input untouched


def test_temporal_attention_scales_alike_in_training_and_eval_and_drops_low_steps():
    ta = sr.TemporalAttention(4, reduction=2, d_th=0.5)
    with torch.no_grad():
        ta.excite[2].bias.copy_(torch.tensor([5.0, -5.0, 2.0, -5.0]))
        ta.excite[2].weight.zero_()
    x = torch.randn(4, 3, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    d = torch.sigmoid(torch.tensor([5.0, -5.0, 2.0, -5.0]))
    trained = ta.train()(x)
    assert torch.allclose(trained, x * d.view(4, 1, 1, 1, 1), atol=1e-6)  # U'[t] = d_t U[t]
    out = ta.eval()(x)
    # a kept step has the scale it had in training (not 1/d_t times larger); a dropped one has no current
    assert torch.allclose(out[0], trained[0], atol=1e-6) and torch.allclose(out[2], trained[2], atol=1e-6)
    assert out[1].abs().sum() == 0 and out[3].abs().sum() == 0
    ta.d_th = 0.0  # no pruning: eval equals training exactly
    assert torch.allclose(ta(x), trained, atol=1e-6)
    with pytest.raises(ValueError, match="built for T=4"):
        ta(x[:3])


def test_temporal_attention_sits_on_the_current_after_batch_norm(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    res = sr.temporal_wise_attention(net, tiny, encoding.Rate(4), d_th=0.0,
                                     train=TrainConfig(epochs=1, progress=False))
    block = res.model.blocks[0]
    assert isinstance(block.neuron.attention, sr.TemporalAttention)
    seen = {}
    block.bn.register_forward_hook(lambda m, i, o: seen.setdefault("bn", o))
    block.neuron.attention.register_forward_hook(lambda m, i, o: seen.update(att_in=i[0], att_out=o))
    block.neuron.neuron.register_forward_hook(lambda m, i, o: seen.setdefault("neuron_in", i[0]))
    res.model.eval()
    with torch.no_grad():
        res.model(encoding.Rate(4)(tiny.test_x[:8], torch.Generator().manual_seed(0)))
    assert torch.allclose(seen["att_in"].flatten(0, 1), seen["bn"])  # the attention scores conv -> BN output
    assert torch.equal(seen["neuron_in"], seen["att_out"])  # and the neuron integrates the scaled current


def test_contract_inputs_are_left_untouched(tiny):
    net = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    before = copy.deepcopy(net.state_dict())
    sr.temporal_wise_attention(net, tiny, encoding.Rate(4), train=TrainConfig(epochs=1, progress=False))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
