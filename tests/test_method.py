"""Exact small cases for the method: model paths, redistribution, training targets, quality gate, truth.

Every expected number here is computed by hand (or by an independent brute-force formula) in the test,
not by the function under test.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from fandom_lib import redistribution
from fandom_lib.model import (
    ReturnLSTM,
    counterfactual_path,
    counterfactual_path_naive,
    prefix_counts,
    sequence_path,
    step_inputs,
)
from fandom_lib.redistribution import (
    apply_return_correction,
    averaging_orders,
    quality_gate,
    redistribute,
    rewards_by_action,
)
from fandom_lib.schema import ACTIONS, DEFAULT_TARGET, PRE_PERIODS
from fandom_lib.sequences import Arrays, Scaler, reference_order, table_to_arrays
from fandom_lib.synthetic import SATURATION, SyntheticSpec, expected_outcome_parts, generate, true_contributions
from fandom_lib.training import (
    TrainConfig,
    TrainResult,
    load_model,
    reference_recipe_config,
    rudder_loss,
    save_model,
    step_targets,
    train_return_model,
)

K = len(ACTIONS)
SAVES, FOLLOWS, ACTIVE, PROGRAMMED = 0, 1, 6, 7


# ---------------------------------------------------------------- a model whose predictions are known


class KnownModel(torch.nn.Module):
    """Prediction after step t = f(counts of the first t actions of the order), with
    f(c) = 1 + w . c + gamma * c_saves * c_active (c: scaled counts). Its final prediction is f(c)."""

    w = torch.tensor([2.0, 1.0, 0.5, 3.0, 0.0, 0.0, 1.5, -1.0])
    gamma = 0.25

    def f(self, c: torch.Tensor) -> torch.Tensor:
        return 1.0 + c @ self.w + self.gamma * c[:, SAVES] * c[:, ACTIVE]

    def forward(self, counts, state, order):
        return torch.stack([self.f(v) for v in prefix_counts(counts, order)], dim=1)


RETURN_SCALE = 10.0
COUNTS = np.array([[3, 1, 0, 2, 0, 5, 20, 4], [0, 0, 1, 0, 7, 0, 0, 9], [1, 2, 3, 4, 5, 6, 7, 8]], np.float32)


def known_setup(monkeypatch):
    """A TrainResult around KnownModel (scaled counts = log1p(count)) and its table; the fast
    counterfactual path needs an LSTM, so redistribution runs the from-scratch one on this stub."""
    monkeypatch.setattr(redistribution, "counterfactual_path", counterfactual_path_naive)
    scaler = Scaler([1.0] * K, [], [], 0.0, RETURN_SCALE)
    n = len(COUNTS)
    result = TrainResult(KnownModel(), scaler, TrainConfig(use_state=False), np.arange(n), np.arange(0))
    arrays = Arrays(COUNTS, np.zeros((n, 0), np.float32), np.array([40.0, 20.0, 30.0]), pd.RangeIndex(n), [])
    c = np.log1p(COUNTS.astype(np.float64))
    return result, arrays, c


def test_rewards_by_action_moves_step_differences_to_action_columns():
    path = np.array([[1.0, 3.0, 4.0, 4.0, 6.0, 6.5, 6.5, 7.0, 10.0]])
    order = np.array([[2, 0, 1, 3, 4, 5, 6, 7]])
    # steps: +2 (action 2), +1 (action 0), 0 (action 1), +2, +0.5, 0, +0.5, +3
    expected = np.array([[1.0, 0.0, 2.0, 2.0, 0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(rewards_by_action(path, order), expected)


def test_prefix_counts_on_two_rows():
    counts = torch.tensor([[1.0, 2, 3, 4, 5, 6, 7, 8], [10.0, 20, 30, 40, 50, 60, 70, 80]])
    order = torch.tensor([[7, 6, 5, 4, 3, 2, 1, 0], [2, 0, 1, 3, 4, 5, 6, 7]])
    p = prefix_counts(counts, order)
    assert p.shape == (9, 2, 8)
    assert torch.equal(p[0], torch.zeros(2, 8))
    assert torch.equal(p[1], torch.tensor([[0.0, 0, 0, 0, 0, 0, 0, 8], [0.0, 0, 30, 0, 0, 0, 0, 0]]))
    assert torch.equal(p[3], torch.tensor([[0.0, 0, 0, 0, 0, 6, 7, 8], [10.0, 20, 30, 0, 0, 0, 0, 0]]))
    assert torch.equal(p[8], counts)


def test_known_predictions_give_exact_shapley_credit_with_one_antithetic_pair(monkeypatch):
    result, arrays, c = known_setup(monkeypatch)
    out = redistribute(result, arrays, "averaged", n_orders=2, seed=3)
    w = KnownModel.w.numpy().astype(np.float64)
    expected = RETURN_SCALE * c * w
    joint = RETURN_SCALE * KnownModel.gamma * c[:, SAVES] * c[:, ACTIVE]
    expected[:, SAVES] += joint / 2  # an order and its reverse split the interaction half and half
    expected[:, ACTIVE] += joint / 2
    np.testing.assert_allclose(out[list(ACTIONS)].to_numpy(), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["baseline"], RETURN_SCALE * 1.0, rtol=1e-6)
    final = RETURN_SCALE * (1 + c @ w + KnownModel.gamma * c[:, SAVES] * c[:, ACTIVE])
    np.testing.assert_allclose(out["prediction"], final, rtol=1e-5)
    np.testing.assert_allclose(out["residual"], arrays.returns - final, rtol=1e-5, atol=1e-4)


def test_known_predictions_in_the_reference_order_give_the_interaction_to_the_later_action(monkeypatch):
    result, arrays, c = known_setup(monkeypatch)
    out = redistribute(result, arrays, "reference")
    w = KnownModel.w.numpy().astype(np.float64)
    expected = RETURN_SCALE * c * w
    expected[:, ACTIVE] += RETURN_SCALE * KnownModel.gamma * c[:, SAVES] * c[:, ACTIVE]  # active comes after saves
    np.testing.assert_allclose(out[list(ACTIONS)].to_numpy(), expected, rtol=1e-5, atol=1e-4)


def test_reference_recipe_credits_the_first_action_with_the_baseline(monkeypatch):
    result, arrays, c = known_setup(monkeypatch)
    out = redistribute(result, arrays, "reference_recipe")
    w = KnownModel.w.numpy().astype(np.float64)
    expected = RETURN_SCALE * c * w
    expected[:, ACTIVE] += RETURN_SCALE * KnownModel.gamma * c[:, SAVES] * c[:, ACTIVE]
    expected[:, SAVES] += RETURN_SCALE * 1.0  # the prediction before any action goes to saves, the first
    np.testing.assert_allclose(out[list(ACTIONS)].to_numpy(), expected, rtol=1e-5, atol=1e-4)
    assert (out["baseline"] == 0).all()


def test_rewards_plus_baseline_telescope_to_the_final_prediction():
    torch.manual_seed(0)
    n, s = 50, 5
    model = ReturnLSTM(s, hidden=8).eval()
    scaler = Scaler([0.7] * K, [0.0] * s, [1.0] * s, 0.0, 12.0)
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, (n, K)).astype(np.float32)
    state = rng.poisson(3.0, (n, s)).astype(np.float32)
    arrays = Arrays(counts, state, rng.poisson(20.0, n).astype(float), pd.RangeIndex(n), [])
    result = TrainResult(model, scaler, TrainConfig(), np.arange(n), np.arange(0))
    out = redistribute(result, arrays, "averaged", n_orders=4, seed=1)
    np.testing.assert_allclose(out["baseline"] + out[list(ACTIONS)].sum(axis=1), out["prediction"], rtol=1e-9)
    # ... and the prediction is the model's final output on the real rows, averaged over the same orders
    c, st = torch.from_numpy(scaler.counts(counts)), torch.from_numpy(scaler.state(state))
    finals = [model(c, st, torch.from_numpy(o))[:, -1].detach().numpy() * 12.0 for o in averaging_orders(n, 4, 1)]
    np.testing.assert_allclose(out["prediction"], np.mean(finals, axis=0), rtol=1e-5)


@pytest.mark.parametrize(
    "state_path, layers, aux_head, n_state",
    [("baseline", 1, True, 6), ("init", 2, True, 6), ("steps", 1, False, 6), ("baseline", 1, False, 0)],
)
def test_fast_counterfactual_path_equals_running_every_variant(state_path, layers, aux_head, n_state):
    torch.manual_seed(1)
    model = ReturnLSTM(n_state, hidden=8, layers=layers, state_path=state_path, aux_head=aux_head).eval()
    n = 40
    counts = torch.rand(n, K) * (torch.rand(n, K) < 0.6)
    state = torch.randn(n, n_state)
    order = torch.from_numpy(np.argsort(np.random.default_rng(2).random((n, K)), axis=1))
    fast = counterfactual_path(model, counts, state, order)
    slow = counterfactual_path_naive(model, counts, state, order)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    # the last variant is the real row, the first has no action at all
    torch.testing.assert_close(fast[:, -1], model(counts, state, order)[:, -1].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast[:, 0], model(torch.zeros_like(counts), state, order)[:, -1].detach(),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sequence_path(model, counts, state, order), model(counts, state, order).detach())


def test_shared_step_zero_gives_the_full_lstm_outputs_and_gradients():
    # the default model runs step 0 (all-zero input, zero initial state) once and broadcasts it
    torch.manual_seed(3)
    model = ReturnLSTM(6, hidden=8, layers=2)
    n = 30
    counts, state = torch.rand(n, K), torch.randn(n, 6)
    order = torch.from_numpy(np.argsort(np.random.default_rng(4).random((n, K)), axis=1))
    x = step_inputs(counts, model.lstm_state(state), order)
    assert torch.count_nonzero(x[:, 0]) == 0
    shared, (h_shared, c_shared) = model.run_lstm(x, None)
    full, (h_full, c_full) = model.lstm(x)
    torch.testing.assert_close(shared, full, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(h_shared, h_full, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(c_shared, c_full, rtol=1e-6, atol=1e-7)
    shared.square().sum().backward()
    grads_shared = [p.grad.clone() for p in model.lstm.parameters()]
    model.zero_grad()
    full.square().sum().backward()
    for got, want in zip(grads_shared, [p.grad for p in model.lstm.parameters()]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_averaging_orders_come_in_pairs_of_an_order_and_its_reverse():
    orders = averaging_orders(5, 4, seed=0)
    assert len(orders) == 4
    for order in orders:
        assert (np.sort(order, axis=1) == np.arange(K)).all()
    np.testing.assert_array_equal(orders[1], orders[0][:, ::-1])
    np.testing.assert_array_equal(orders[3], orders[2][:, ::-1])
    assert len(averaging_orders(5, 3, seed=0)) == 3


def test_return_correction_makes_rows_sum_to_the_return():
    contrib = pd.DataFrame(np.arange(16, dtype=float).reshape(2, 8), columns=list(ACTIONS))
    contrib["baseline"] = [5.0, -1.0]
    contrib["prediction"] = contrib["baseline"] + contrib[list(ACTIONS)].sum(axis=1)  # 33, 91
    contrib["return"] = [41.0, 75.0]
    contrib["residual"] = contrib["return"] - contrib["prediction"]
    out = apply_return_correction(contrib)
    np.testing.assert_allclose(out["baseline"] + out[list(ACTIONS)].sum(axis=1), [41.0, 75.0])
    # the residual (+8, -16) is spread evenly: +1 and -2 per action
    np.testing.assert_allclose(out[list(ACTIONS)].to_numpy() - contrib[list(ACTIONS)].to_numpy(),
                               [[1.0] * 8, [-2.0] * 8])


def test_quality_gate_on_known_numbers():
    y = np.array([1.0, 2.0, 3.0, 4.0])  # sum of squares around the mean: 5
    failing = quality_gate(y, np.array([1.0, 2.0, 3.0, 5.0]))  # 1 / 5 = 0.2: not below the gate
    assert failing["rse"] == pytest.approx(0.2) and not failing["passed"]
    assert "WARNING" in failing["message"] and "0.200" in failing["message"]
    passing = quality_gate(y, np.array([1.5, 2.0, 3.0, 4.0]))  # 0.25 / 5 = 0.05
    assert passing["rse"] == pytest.approx(0.05) and passing["passed"]
    assert "passed" in passing["message"] and "95%" in passing["message"]
    assert not quality_gate(np.array([2.0, 2.0]), np.array([2.0, 2.0]))["passed"]  # no variation: no verdict


def test_step_targets_for_both_auxiliary_targets():
    y = torch.tensor([2.0, 3.0])
    torch.testing.assert_close(step_targets(y, "return", 3), torch.tensor([[2.0, 2, 2], [3.0, 3, 3]]))
    torch.testing.assert_close(step_targets(y, "zero_until_last", 3), torch.tensor([[0.0, 0, 2], [0.0, 0, 3]]))
    with pytest.raises(ValueError, match="aux_target"):
        step_targets(y, "zero", 3)


def test_rudder_loss_is_per_sample_squared_error_not_squared_mean():
    pred = torch.tensor([[1.0, 3.0], [5.0, 1.0]])
    targets = torch.tensor([[2.0, 2.0], [2.0, 2.0]])
    # main: ((3-2)^2 + (1-2)^2) / 2 = 1; aux: ((1-2)^2 + (5-2)^2) / 2 = 5 (the squared mean would be 0 and 1)
    assert float(rudder_loss(pred, targets, aux_weight=0.5)) == pytest.approx(1 + 0.5 * 5)


def test_reference_recipe_config_is_the_notebooks_recipe():
    cfg = reference_recipe_config(epochs=3)
    assert (cfg.aux_target, cfg.use_state, cfg.order, cfg.aux_head, cfg.epochs) == (
        "zero_until_last", False, "reference", False, 3)


# ---------------------------------------------------------------- ground truth of the synthetic data


def two_row_table() -> pd.DataFrame:
    """Two hand-made rows: no action at all; and 2 saves, 1 follow, 10 active and 40 programmed streams."""
    df = pd.DataFrame(0, index=[10, 11], columns=list(ACTIONS))
    df.loc[11, [ACTIONS[SAVES], ACTIONS[FOLLOWS], ACTIONS[ACTIVE], ACTIONS[PROGRAMMED]]] = [2, 1, 10, 40]
    for p, (a, b) in zip(PRE_PERIODS, [(3, 30), (6, 60), (0, 0)]):
        df[f"streams_active_streams_{p}"] = [a, b]  # pre-period means 3 and 30
    df["super_listener"] = [0, 1]
    return df


def test_true_contributions_of_a_two_row_table_by_hand():
    target = DEFAULT_TARGET
    spec = SyntheticSpec()
    beta = spec.effects[target]
    assert (beta[ACTIONS[SAVES]], beta[ACTIONS[FOLLOWS]], beta[ACTIONS[ACTIVE]], beta[ACTIONS[PROGRAMMED]]) == (
        3.0, 4.0, 1.2, -0.15)
    assert spec.interactions[target] == (ACTIONS[SAVES], ACTIONS[ACTIVE], 0.02)
    truth = true_contributions(two_row_table(), target, spec)
    # baseline = floor 8 + 0.15 * 40 (room for the largest negative effect) + 0.8 * pre-period mean + 4 * super
    np.testing.assert_allclose(truth["baseline"], [8 + 6 + 0.8 * 3, 8 + 6 + 0.8 * 30 + 4])
    assert (truth.loc[10, list(ACTIONS)] == 0).all()
    h_saves = 5 * (1 - math.exp(-2 / 5))  # saturating h(x) = s (1 - exp(-x / s)), s = 5 for saves
    h_follows = 1 * (1 - math.exp(-1 / 1))
    h_active = 40 * (1 - math.exp(-10 / 40))
    h_prog = 40 * (1 - math.exp(-40 / 40))
    joint = 0.02 * h_saves * h_active
    row = truth.loc[11]
    assert row[ACTIONS[SAVES]] == pytest.approx(3.0 * h_saves + joint / 2)
    assert row[ACTIONS[FOLLOWS]] == pytest.approx(4.0 * h_follows)
    assert row[ACTIONS[ACTIVE]] == pytest.approx(1.2 * h_active + joint / 2)
    assert row[ACTIONS[PROGRAMMED]] == pytest.approx(-0.15 * h_prog)
    assert row[[ACTIONS[k] for k in (2, 3, 4, 5)]].eq(0).all()
    assert row["expected"] == pytest.approx(row["baseline"] + row[list(ACTIONS)].sum())


def test_shapley_truth_sums_to_expected_minus_baseline_and_matches_brute_force():
    df = generate(300, seed=4)
    target = DEFAULT_TARGET
    truth = true_contributions(df, target)
    np.testing.assert_allclose(truth[list(ACTIONS)].sum(axis=1), truth["expected"] - truth["baseline"], rtol=1e-12)
    # brute force: Shapley value of mu over all 2^8 coalitions of actions (absent = count zero), 5 rows
    pre = df[[f"streams_active_streams_{p}" for p in PRE_PERIODS]].to_numpy(float).mean(axis=1)
    sup = df["super_listener"].to_numpy(float)
    rows = np.flatnonzero((df[list(ACTIONS)].to_numpy() > 0).sum(axis=1) >= 4)[:5]
    spec = SyntheticSpec()
    for r in rows:
        x = df[list(ACTIONS)].to_numpy(float)[r]

        def mu(subset: tuple[int, ...]) -> float:
            xs = np.zeros((1, K))
            xs[0, list(subset)] = x[list(subset)]
            base, contrib = expected_outcome_parts(xs, pre[r : r + 1], sup[r : r + 1], target, spec)
            return float(base[0] + contrib.sum())

        for k in range(K):
            others = [j for j in range(K) if j != k]
            value = 0.0
            for size in range(K):
                weight = math.factorial(size) * math.factorial(K - size - 1) / math.factorial(K)
                for s in itertools.combinations(others, size):
                    value += weight * (mu(tuple(sorted(s + (k,)))) - mu(s))
            assert truth.iloc[r, k] == pytest.approx(value, abs=1e-9)


def test_saturation_scales_are_positive():
    assert all(v > 0 for v in SATURATION.values())


# ---------------------------------------------------------------- training


def test_training_is_reproducible_and_save_load_keeps_the_predictions(tmp_path):
    arrays = table_to_arrays(generate(1500, seed=1), DEFAULT_TARGET)
    cfg = TrainConfig(epochs=2, hidden=8, seed=5)
    a, b = train_return_model(arrays, cfg), train_return_model(arrays, cfg)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    save_model(tmp_path / "m.pt", a)
    loaded = load_model(tmp_path / "m.pt")
    ra = redistribute(a, arrays, "averaged", 2)
    rl = redistribute(loaded, arrays, "averaged", 2)
    pd.testing.assert_frame_equal(ra, rl)
    assert loaded.config == replace(cfg, loss="poisson")  # "auto" recorded as the loss it chose (streams)


# The recovery test: a purely additive truth (the default effects without the interaction, and the
# pre-period not carried into the outcome) on 8,000 rows; after at most 30 epochs each frequent
# action's per-fan credit correlates with the truth at 0.9 or more and its mean is within 25% of the
# true mean, and the action without effect (shares) gets a mean within 5% of the largest true mean
# (the reports' "near zero"). (With the pre-period confounding kept, 8,000 rows are too few: part of
# the active streams' credit goes to the baseline; 50,000 rows recover it, see benchmarks/recovery.py.)
RECOVERY_ROWS = 8000
RECOVERY_MIN_CORR = 0.9
RECOVERY_MEAN_TOLERANCE = 0.25


def test_an_additive_truth_is_recovered_by_the_trained_model():
    spec = SyntheticSpec()
    interactions = dict(spec.interactions)
    interactions[DEFAULT_TARGET] = (ACTIONS[SAVES], ACTIONS[ACTIVE], 0.0)
    spec = replace(spec, interactions=interactions, confounding=0.0)
    df = generate(RECOVERY_ROWS, seed=4, spec=spec)
    truth = true_contributions(df, DEFAULT_TARGET, spec)
    arrays = table_to_arrays(df, DEFAULT_TARGET)
    result = train_return_model(arrays, TrainConfig(epochs=30, seed=0))
    est = redistribute(result, arrays, "averaged", n_orders=4)
    frequent = [ACTIONS[k] for k in (SAVES, FOLLOWS, 2, ACTIVE, PROGRAMMED)]
    for a in frequent:
        corr = np.corrcoef(est[a], truth[a])[0, 1]
        assert corr >= RECOVERY_MIN_CORR, (a, corr)
        assert est[a].mean() == pytest.approx(truth[a].mean(), rel=RECOVERY_MEAN_TOLERANCE), a
    assert abs(est[ACTIONS[5]].mean()) < 0.05 * truth[list(ACTIONS)].mean().abs().max()
    assert est["baseline"].mean() == pytest.approx(truth["baseline"].mean(), rel=0.1)


def test_additive_model_recovers_an_exactly_additive_return():
    from fandom_lib.crosscheck import additive_model

    rng = np.random.default_rng(0)
    n = 400
    counts = (rng.poisson(1.0, (n, K)) * (rng.random((n, K)) < 0.5)).astype(np.float32)
    state = rng.poisson(4.0, (n, 2)).astype(np.float32)
    x = counts.astype(np.float64)
    y = 2.0 + 0.5 * state[:, 0] + 3.0 * (x[:, SAVES] > 0) + 1.5 * np.log1p(x[:, FOLLOWS]) - 0.2 * np.log1p(x[:, ACTIVE]) ** 2
    arrays = Arrays(counts, state, y, pd.RangeIndex(n), ["a", "b"])
    contrib, pred = additive_model(arrays, np.arange(n))
    np.testing.assert_allclose(pred, y, atol=1e-8)
    np.testing.assert_allclose(contrib[ACTIONS[SAVES]], 3.0 * (x[:, SAVES] > 0), atol=1e-8)
    np.testing.assert_allclose(contrib[ACTIONS[FOLLOWS]], 1.5 * np.log1p(x[:, FOLLOWS]), atol=1e-8)
    np.testing.assert_allclose(contrib[ACTIONS[ACTIVE]], -0.2 * np.log1p(x[:, ACTIVE]) ** 2, atol=1e-8)
    np.testing.assert_allclose(contrib[ACTIONS[3]], 0.0, atol=1e-8)


def test_poisson_error_keeps_a_gradient_towards_positive_predictions():
    from fandom_lib.training import per_sample_error

    pred = torch.tensor([2.0, -0.5, 1e-5], requires_grad=True)
    target = torch.tensor([3.0, 3.0, 3.0])
    err = per_sample_error(pred, target, "poisson")
    assert float(err[0].detach()) == pytest.approx(2.0 - 3.0 * math.log(2.0))
    err.sum().backward()
    assert pred.grad[0] == pytest.approx(1 - 3.0 / 2.0)
    assert (pred.grad[1:] < 0).all()  # descending the error raises a prediction at or below zero


def test_training_that_diverges_stops_with_a_clear_error():
    """A learning rate far too large makes the loss overflow: TrainingError says what to try, not a NaN model."""
    from fandom_lib.synthetic import generate
    from fandom_lib.sequences import table_to_arrays
    from fandom_lib.training import TrainConfig, TrainingError, train_return_model

    arrays = table_to_arrays(generate(300, 0), "streams_active_streams_following_four_weeks")
    with pytest.raises(TrainingError, match="training diverged at epoch 1: .* smaller learning_rate"):
        train_return_model(arrays, TrainConfig(epochs=2, learning_rate=1e30, grad_clip=0.0, ema=0.0))


def test_explained_share_in_words():
    from fandom_lib.analysis import explained_share

    assert explained_share(0.074) == "93%"
    assert explained_share(1.26) == "none (it predicts no better than the average outcome)"
    assert explained_share(float("nan")) == "an unknown share"


def test_auto_loss_is_poisson_for_outcomes_averaging_one_or_more():
    from fandom_lib.training import choose_loss

    assert choose_loss("auto", np.array([0, 0, 1, 3])) == "poisson"  # mean 1.0
    assert choose_loss("auto", np.array([0, 0, 1, 2])) == "squared"  # mean 0.75
    assert choose_loss("squared", np.array([50.0])) == "squared" and choose_loss("poisson", np.array([0])) == "poisson"
    with pytest.raises(ValueError, match="loss must be 'auto', 'squared' or 'poisson'"):
        choose_loss("absolute", np.array([1.0]))
