"""components.tracking: pipelines that start and log at the same time on one MLflow.

Three pipelines on one server (tests/infra/test_mlflow_postgres.py) race on two writes MLflow
does as check-then-insert: creating the experiment and logging a dataset both of them read.
The loser's refusal is a 400 that MLflow's client does not retry; these tests hand each helper
that refusal and check it recovers, and that any other refusal still fails at once."""

from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path):
    from components import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, tracking.setup(uri, "races", str(tmp_path / "artifacts"))


def test_an_experiment_created_by_another_pipeline_meanwhile_is_taken(tmp_path, store, monkeypatch):
    import mlflow
    from components import tracking
    from mlflow import MlflowClient

    uri, _ = store
    other = MlflowClient(uri).create_experiment("shared", artifact_location=(tmp_path / "a").as_uri())
    # This pipeline looked before the other one created it: it saw no experiment.
    monkeypatch.setattr(mlflow, "get_experiment_by_name", _none_once(mlflow.get_experiment_by_name))
    assert tracking.setup(uri, "shared", str(tmp_path / "a")) == other


def test_a_dataset_logged_by_another_pipeline_meanwhile_is_logged_again(tmp_path, store, monkeypatch):
    from mlflow.exceptions import MlflowException

    import mlflow
    from components import tracking

    data = tmp_path / "rl.jsonl"
    data.write_text('{"prompt": "1+1", "answer": "2"}\n')
    real, calls = mlflow.log_input, []

    def loses_the_race_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:  # what the server answers the loser of two concurrent inserts
            raise MlflowException("(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint", "BAD_REQUEST")
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", loses_the_race_once)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with mlflow.start_run() as run:
        tracking.log_datasets({"rl": str(data)}, {"rl": "d" * 64}, context="input")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("rl", "d" * 16)] and len(calls) == 2


def test_any_other_refusal_fails_at_once(tmp_path, store, monkeypatch):
    from mlflow.exceptions import MlflowException

    import mlflow
    from components import tracking

    calls = []

    def refuses(*args, **kwargs):
        calls.append(args)
        raise MlflowException("Invalid value for parameter 'context'", "INVALID_PARAMETER_VALUE")

    monkeypatch.setattr(mlflow, "log_input", refuses)
    (tmp_path / "rl.jsonl").write_text("{}\n")
    with mlflow.start_run(), pytest.raises(MlflowException, match="Invalid value"):
        tracking.log_datasets({"rl": str(tmp_path / "rl.jsonl")}, {"rl": "d" * 64}, context="input")
    assert len(calls) == 1


def test_a_race_lost_every_time_is_raised_after_the_last_attempt(monkeypatch):
    from components import tracking

    monkeypatch.setattr("time.sleep", lambda seconds: None)
    attempts = []

    def always_loses():
        attempts.append(1)
        raise RuntimeError("UNIQUE constraint failed: datasets.name")

    with pytest.raises(RuntimeError, match="UNIQUE"):
        tracking.retry_write_race(always_loses, attempts=3)
    assert len(attempts) == 3


def _none_once(function):
    seen = []

    def wrapped(*args, **kwargs):
        if not seen:
            seen.append(1)
            return None
        return function(*args, **kwargs)

    return wrapped


def test_logging_a_dataset_file_prints_no_warning_of_mlflows_own_making(tmp_path, store):
    import warnings

    import mlflow
    from components import tracking

    (tmp_path / "rl.jsonl").write_text("{}\n")
    with mlflow.start_run() as run, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracking.log_datasets({"rl": str(tmp_path / "rl.jsonl")}, {"rl": "d" * 64}, context="input")
    assert not [w for w in caught if "interpreted in multiple ways" in str(w.message)], "MLflow's two local-file sources"
    assert [i.dataset.name for i in mlflow.get_run(run.info.run_id).inputs.dataset_inputs] == ["rl"]
