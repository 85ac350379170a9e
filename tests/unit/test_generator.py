import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zenloop.data.generator import CLASSIFICATION_TARGET, SCENARIOS, generate_orders

N = 6_000


def test_same_seed_same_rows_and_other_seed_other_rows():
    first = generate_orders(2_000, seed=3)
    pd.testing.assert_frame_equal(first, generate_orders(2_000, seed=3))
    assert not first["unit_price"].equals(generate_orders(2_000, seed=4)["unit_price"])


def test_orders_look_like_orders():
    frame = generate_orders(N, seed=1)
    assert len(frame) == N
    assert frame["order_id"].is_unique
    assert frame["seller_id"].nunique() > 1_000, "thousands of distinct seller ids"
    assert (frame["unit_price"] > 0).all() and (frame["order_total"] > 0).all()
    assert frame["customer_tenure_days"].isna().any(), "realistic missing values"
    assert 0.1 < frame[CLASSIFICATION_TARGET].mean() < 0.5
    assert pd.api.types.is_datetime64_any_dtype(frame["order_ts"])


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario 'moon_landing'"):
        generate_orders(100, scenario="moon_landing")


def _moved(base: pd.Series, drifted: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(base):
        return stats.ks_2samp(base.dropna(), drifted.dropna()).pvalue < 1e-6
    shares = pd.concat(
        [base.value_counts(normalize=True), drifted.value_counts(normalize=True)], axis=1
    ).fillna(0.0)
    return 0.5 * np.abs(shares.iloc[:, 0] - shares.iloc[:, 1]).sum() > 0.2


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_moves_what_it_claims(name):
    base = generate_orders(N, seed=11)
    drifted = generate_orders(N, seed=12, scenario=name, strength=1.0)
    for column in SCENARIOS[name].moves:
        assert _moved(base[column], drifted[column]), f"{name} did not move {column}"
    calm = generate_orders(N, seed=12, scenario=name, strength=0.0)
    for column in SCENARIOS[name].moves:
        if pd.api.types.is_numeric_dtype(base[column]):
            assert stats.ks_2samp(base[column].dropna(), calm[column].dropna()).pvalue > 1e-4
