from zenloop.config import GateConfig
from zenloop.gates import gate_failures, judge_against_baselines, judge_against_champion
from zenloop.metrics import primary_metric
from zenloop.report import CandidateBoard
from zenloop.training import CandidateResult

REG = {"rmse": 10.0, "mae": 5.0, "r2": 0.9, "mape": 0.1}


def test_regression_gates():
    gates = GateConfig(min_r2=0.8, max_rmse=12.0, max_gap_pct=10)
    assert gate_failures(REG, 5.0, "regression", gates) == []
    reasons = gate_failures({**REG, "r2": 0.7, "rmse": 13.0}, 25.0, "regression", gates)
    assert len(reasons) == 3
    assert "r2 0.7000 violates min_r2 0.8" in reasons[0]
    assert "rmse 13.0000 violates max_rmse 12.0" in reasons[1]
    assert "gap 25.0% exceeds max_gap_pct 10" in reasons[2]


def test_classification_gates_and_disabled_gates():
    metrics = {"f1": 0.4, "roc_auc": 0.55}
    assert (
        len(gate_failures(metrics, 0, "classification", GateConfig(min_f1=0.5, min_roc_auc=0.6)))
        == 2
    )
    off = GateConfig(min_f1=None, min_roc_auc=None, max_gap_pct=None)
    assert gate_failures(metrics, 99, "classification", off) == []


RMSE, AUC = primary_metric("regression"), primary_metric("classification")


def test_first_model_is_promoted_and_margin_is_respected():
    assert judge_against_champion(10.0, None, RMSE, 0.0, "test").promote
    assert judge_against_champion(9.0, 10.0, RMSE, 0.05, "test").promote  # 10% lower rmse
    stays = judge_against_champion(9.8, 10.0, RMSE, 0.05, "test")  # only 2% better
    assert not stays.promote and "champion stays" in stays.reason
    assert not judge_against_champion(10.0, 10.0, RMSE, 0.0, "test").promote  # a tie keeps it
    assert judge_against_champion(0.85, 0.8, AUC, 0.0, "recent").promote  # higher auc


def test_a_candidate_must_beat_every_naive_baseline():
    baselines = {"recent mean": 12.0, "recent median": 11.0}
    beats = judge_against_baselines(10.0, baselines, RMSE, "test")
    assert beats.promote and "'recent median' 11.0000" in beats.reason
    loses = judge_against_baselines(11.5, baselines, RMSE, "test")
    assert not loses.promote and "does not beat a naive baseline" in loses.reason
    assert not judge_against_baselines(11.0, baselines, RMSE, "test").promote  # a tie is no win
    log_loss = primary_metric("classification", "log_loss")
    assert judge_against_baselines(0.3, {"class prior": 0.4}, log_loss, "test").promote
    assert not judge_against_baselines(0.5, {"class prior": 0.5}, AUC, "test").promote


def _result(name, rmse, failures=(), validation_rmse=None):
    validation = {**REG, "rmse": rmse if validation_rmse is None else validation_rmse}
    metrics = {"train": REG, "validation": validation, "test": {**REG, "rmse": rmse}}
    return CandidateResult(name, "linear", {}, metrics, 0.0, list(failures), 0.1)


def test_board_ranks_passing_candidates_first_on_the_validation_rows():
    board = CandidateBoard(
        "regression", [_result("a", 5.0, ["gap"]), _result("b", 9.0), _result("c", 7.0)]
    )
    assert [r.name for r in board.ranked()] == ["c", "b", "a"]
    assert board.best_passing().name == "c"
    assert CandidateBoard("regression", [_result("a", 5.0, ["gap"])]).best_passing() is None
    # the test rows judge the choice, they do not make it
    chosen = CandidateBoard(
        "regression",
        [_result("d", 5.0, validation_rmse=9.0), _result("e", 8.0, validation_rmse=6.0)],
    )
    assert chosen.best_passing().name == "e"
    mae = CandidateBoard("regression", [_result("f", 5.0)], metric_name="mae")
    assert mae.metric == "mae" and "validation mae" in mae.to_markdown()


def test_the_gap_of_an_early_stopped_model_is_reported_not_judged():
    gates = GateConfig(min_r2=0.8, max_gap_pct=15)
    assert gate_failures(REG, 25.0, "regression", gates, early_stopped=True) == []
    assert gate_failures(REG, 25.0, "regression", gates, early_stopped=False)
    strict = GateConfig(max_gap_pct=15, gap_applies_to_early_stopped=True)
    assert gate_failures(REG, 25.0, "regression", strict, early_stopped=True)
