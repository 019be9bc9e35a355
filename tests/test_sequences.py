"""Sequences of a hand-made two-user table: arrays, scaling, orders and the per-step inputs the model builds."""

import numpy as np
import pandas as pd
import torch

from fandom_lib.model import step_inputs
from fandom_lib.schema import ACTIONS, PRE_PERIOD_COLUMNS, SEGMENT_COLUMNS
from fandom_lib.sequences import (
    fit_scaler,
    random_orders,
    reference_order,
    split_rows,
    state_columns_present,
    table_to_arrays,
)

TARGET = "streams_active_streams_following_four_weeks"


def two_users() -> pd.DataFrame:
    rows = {a: [0, 0] for a in ACTIONS}
    rows["saves_treatment_period"] = [2, 0]
    rows["streams_active_streams_treatment_period"] = [5, 1]
    rows[TARGET] = [10, 3]
    rows["super_listener"] = [1, 0]
    return pd.DataFrame(rows, index=[17, 42])


def test_arrays_keep_the_action_order_the_index_and_only_present_state_columns():
    df = two_users()
    have, missing = state_columns_present(df)
    assert have == ["super_listener"]
    assert len(missing) == len(SEGMENT_COLUMNS) + len(PRE_PERIOD_COLUMNS) - 1
    arr = table_to_arrays(df, TARGET)
    np.testing.assert_array_equal(arr.counts, [[2, 0, 0, 0, 0, 0, 5, 0], [0, 0, 0, 0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(arr.state, [[1], [0]])
    np.testing.assert_array_equal(arr.returns, [10, 3])
    assert list(arr.index) == [17, 42]


def test_scaler_maps_zero_counts_to_zero_and_returns_over_their_mean():
    arr = table_to_arrays(two_users(), TARGET)
    scaler = fit_scaler(arr, np.array([0, 1]))
    scaled = scaler.counts(arr.counts)
    assert (scaled[arr.counts == 0] == 0).all()
    # saves: log1p([2, 0]) has spread log(3)/2, so the 2 saves scale to exactly 2
    assert np.isclose(scaled[0, 0], 2.0)
    assert scaler.return_scale == 6.5
    np.testing.assert_allclose(scaler.returns(arr.returns), [10 / 6.5, 3 / 6.5], rtol=1e-6)


def test_step_inputs_of_two_users_in_the_reference_order():
    counts = torch.tensor([[2.0, 0, 0, 0, 0, 0, 5, 0], [0, 0, 0, 0, 0, 0, 1, 0]])
    state = torch.tensor([[1.0], [0.0]])
    x = step_inputs(counts, state, torch.from_numpy(reference_order(2)))
    assert x.shape == (2, 9, 1 + 24)
    # step 0: only the state
    np.testing.assert_array_equal(x[:, 0, 0], [1, 0])
    assert (x[:, 0, 1:] == 0).all()
    # user 0 at step 1 (saves): observed = [2, 0, ...], action count at saves = 2, identity = saves
    obs, act, ident = x[0, 1, 1:9], x[0, 1, 9:17], x[0, 1, 17:25]
    np.testing.assert_array_equal(obs, [2, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(act, [2, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(ident, [1, 0, 0, 0, 0, 0, 0, 0])
    # user 0 at the last step: everything observed, the action is programmed streams with count 0
    np.testing.assert_array_equal(x[0, 8, 1:9], counts[0])
    np.testing.assert_array_equal(x[0, 8, 9:17], np.zeros(8))
    np.testing.assert_array_equal(x[0, 8, 17:25], np.eye(8)[7])
    # user 1 before its active streams (step 6) has observed nothing; at step 7 it sees 1 stream
    assert (x[1, 6, 1:9] == 0).all()
    np.testing.assert_array_equal(x[1, 7, 1:9], [0, 0, 0, 0, 0, 0, 1, 0])


def test_step_inputs_follow_each_rows_own_order():
    counts = torch.tensor([[1.0, 2, 3, 4, 5, 6, 7, 8]])
    order = torch.tensor([[7, 6, 5, 4, 3, 2, 1, 0]])
    x = step_inputs(counts, torch.zeros(1, 0), order)
    np.testing.assert_array_equal(x[0, 1:, 8:16].sum(dim=1), [8, 7, 6, 5, 4, 3, 2, 1])
    np.testing.assert_array_equal(x[0, 2, 0:8], [0, 0, 0, 0, 0, 0, 7, 8])


def test_orders_are_permutations_and_the_split_is_seeded_and_disjoint():
    orders = random_orders(1000, np.random.default_rng(0))
    assert (np.sort(orders, axis=1) == np.arange(8)).all()
    assert len({tuple(o) for o in orders}) > 900
    train, val = split_rows(100, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    again = split_rows(100, 0.2, seed=3)
    np.testing.assert_array_equal(train, again[0])
