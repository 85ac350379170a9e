"""Hyperparameter search: seeded, cross-validated, reported per iteration."""

from tests.support.data import lenient_gates, schema_for
from zenloop.config import CandidateConfig, DataConfig, FeatureConfig, SearchConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.training import fit_candidate, split_frame


def test_search_reports_each_iteration_and_picks_from_the_space():
    data = DataConfig(n_rows=1_500, seed=5)
    frame = load_frame(data)
    schema = schema_for(frame, data)
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=True)
    )
    space = {"alpha": [0.01, 1.0, 100.0, 10_000.0]}
    candidate = CandidateConfig(
        name="ridge",
        family="linear",
        search=SearchConfig(n_iter=3, cv=2, param_distributions=space),
    )
    notes: list[str] = []
    runs = [
        fit_candidate(candidate, schema, FeatureConfig(), lenient_gates(), splits, 0, notes.append)
        for _ in range(2)
    ]
    assert [n.split(",")[0] for n in notes[:3]] == [f"ridge: search {i}/3" for i in (1, 2, 3)]
    picked = [result.params["alpha"] for _, result in runs]
    assert picked[0] in space["alpha"] and picked[0] == picked[1], "the search is seeded"
    assert picked[0] != 10_000.0, "the heaviest penalty cannot win on this data"
