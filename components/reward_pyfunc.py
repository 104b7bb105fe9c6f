"""The MLflow model a log-likelihood reward model is served as (logged as code: `mlflow.pyfunc.log_model(python_model=<this file>)`).

A head scorer is served by MLflow's own `text-classification` flavor; a log-likelihood one is a
causal LM whose score that flavor cannot compute, so it is served by this pyfunc, with the same
request (exchanges rendered with the chat template) and a `score` per exchange in the answer.
The model folder travels as the artifact `model`; components/ travels as code (`code_paths`).
"""

from __future__ import annotations

from mlflow.pyfunc import PythonModel

import mlflow


class LogLikelihoodReward(PythonModel):
    def load_context(self, context):
        from components.scoring import RewardScorer

        self.scorer = RewardScorer(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        texts = model_input.iloc[:, 0].tolist() if isinstance(model_input, pd.DataFrame) else list(model_input)
        return pd.DataFrame({"score": self.scorer.score_texts([str(text) for text in texts])})


mlflow.models.set_model(LogLikelihoodReward())
