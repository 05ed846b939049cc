"""`evaluation.measure_all`: one flat, JSON-safe set of measurements, priced under every energy model."""

import json
import math

import pytest

from snncomp import energy, evaluation, metrics, models, registry, train
from snncomp.data import encoding


def _published_chips() -> set[str]:
    return {n for n, p in energy.chips.profiles().items() if p.published}


@pytest.fixture(scope="module")
def measured(tiny):
    model, split, enc = tiny
    ann = models.conv_ann((1, 8, 8), channels=(4, 8), seed=0)
    return evaluation.measure_all(model, enc, split, ann=(ann, encoding.Direct(1)))


def test_measure_all_is_flat_finite_and_json_safe(measured):
    json.dumps(measured, allow_nan=False)  # raises on NaN/inf or a non-JSON value
    for k in ("accuracy", "params", "connection_sparsity", "deployed_bits", "footprint_bytes", "deployed_footprint_bytes",
              "weight_bits", "spikes_per_sample", "activation_sparsity", "dense_synops", "effective_macs", "effective_acs",
              "synops", "neuron_updates", "T"):
        assert isinstance(measured[k], (int, float)) and math.isfinite(measured[k]), k
    assert measured["T"] == 2 and measured["weight_bits"] == 32.0
    assert measured["deployed_footprint_bytes"] == measured["deployed_bits"] / 8
    assert measured["synops"] == measured["effective_macs"] + measured["effective_acs"]


def test_energy_under_45nm_every_published_chip_and_memory(measured):
    models_priced = set(measured["energy_pj"])
    assert models_priced == {"45nm-fp32", "memory"} | _published_chips()
    assert _published_chips() and all(v > 0 and math.isfinite(v) for v in measured["energy_pj"].values())
    assert set(measured["energy_notes"]) == models_priced
    assert all(n.startswith("prices ") and "; leaves out " in n for n in measured["energy_notes"].values())


def test_agrees_with_metrics_measure(tiny, measured):
    model, split, enc = tiny
    report = metrics.measure(model, split.test_x, enc, split.test_y)
    for k in evaluation.REPORT_FIELDS:
        assert measured[k] == pytest.approx(getattr(report, k)), k
    assert measured["energy_pj"]["45nm-fp32"] == pytest.approx(energy.price(report, "45nm-fp32").total_pj)
    counts = energy.memory.measure(model, split.test_x, enc)
    assert measured["energy_pj"]["memory"] == pytest.approx(energy.price(counts, "memory").total_pj)
    # the 32-bit variant of the narrow-weight memory model is the model itself
    assert evaluation.memory_at_bits(counts, 32) == pytest.approx(measured["energy_pj"]["memory"])


def test_ann_under_both_accountings(tiny, measured):
    model, split, _ = tiny
    ann = models.conv_ann((1, 8, 8), channels=(4, 8), seed=0)
    rep = metrics.measure(ann, split.test_x, encoding.Direct(1), split.test_y)
    pj = measured["ann_energy_pj"]
    assert set(pj) == {"45nm-fp32-dense", "45nm-fp32-zero-skipping", "memory"}  # FP32 weights: one regime
    assert pj["45nm-fp32-dense"] == pytest.approx(energy.ann_energy(rep, "fp32").total_pj)
    assert pj["45nm-fp32-zero-skipping"] == pytest.approx(energy.ann_energy(rep, "fp32", skip_zeros=True).total_pj)
    assert pj["45nm-fp32-zero-skipping"] < pj["45nm-fp32-dense"]  # the ReLUs' zeros are skipped
    for k, v in measured["ann_ratio"].items():
        snn = measured["energy_pj"]["memory" if k == "memory" else "45nm-fp32"]
        assert v == pytest.approx(snn / pj[k])
    assert measured["ann_accuracy"] == pytest.approx(rep.accuracy) and measured["ann_regime"] == "fp32"


def test_narrow_weights_priced_at_their_width(tiny):
    model, split, enc = tiny
    ann = models.conv_ann((1, 8, 8), channels=(4, 8), seed=0)
    # 4-bit weights, membrane potentials still in floating point: the adds stay FP32 adds
    q = registry.get("uniform-ptq").fn(model, split, enc, bits=4).model
    m = evaluation.measure_all(q, enc, split, ann=(ann, encoding.Direct(1)))
    assert m["weight_bits"] == pytest.approx(4.0) and m["state_bits"] == 32.0
    assert "45nm-int8" not in m["energy_pj"] and m["ann_regime"] == "fp32"
    # weights read at 4 bits cost less memory energy than 32-bit words, the rest is unchanged
    assert 0 < m["energy_pj"]["memory-w4"] < m["energy_pj"]["memory"]
    assert m["ann_ratio"]["memory-w4"] == pytest.approx(m["energy_pj"]["memory-w4"] / m["ann_energy_pj"]["memory-w4"])
    # MINT: 4-bit weights and 4-bit potentials on one integer grid: integer adds, against an int8 ANN
    mint = registry.get("mint").fn(model, split, enc, bits=4, membrane_bits=4, train=train.NONE).model
    m = evaluation.measure_all(mint, enc, split, ann=(ann, encoding.Direct(1)))
    assert m["state_bits"] == 4.0 and "45nm-int8" in m["energy_pj"]
    assert {"45nm-int8-dense", "45nm-int8-zero-skipping", "45nm-fp32-dense"} <= set(m["ann_energy_pj"])
    assert m["ann_regime"] == "int8"
    assert m["ann_ratio"]["45nm-int8-dense"] == pytest.approx(m["energy_pj"]["45nm-int8"]
                                                              / m["ann_energy_pj"]["45nm-int8-dense"])
    # the deployed footprint takes the cheapest storage format; the dense one is kept beside it
    assert m["deployed_footprint_bytes"] <= m["deployed_dense_bytes"]
    assert evaluation.regime_for_bits(8) == "int8" and evaluation.regime_for_bits(16) == "int32"
    assert evaluation.regime_for_bits(32) == "fp32"


def test_parts_and_errors(tiny):
    model, split, enc = tiny
    with pytest.raises(ValueError, match="no validation part"):
        evaluation.measure_all(model, enc, split, "val")
    with pytest.raises(ValueError, match="part must be"):
        evaluation.measure_all(model, enc, split, "holdout")
    val = split.with_validation(0.25, 0)
    m = evaluation.measure_all(model, enc, val, "val")
    assert m["accuracy"] is not None and 0.0 <= m["accuracy"] <= 1.0
