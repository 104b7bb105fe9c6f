# syntax=docker/dockerfile:1
# The MLflow tracking server of infra/k8s/mlflow.yaml: mlflow with the PostgreSQL driver
# (backend store) and boto3 (S3 artifacts), non-root. Nothing from the repository is copied
# (mlflow.Dockerfile.dockerignore sends an empty context).
#
#   docker build -f infra/docker/mlflow.Dockerfile -t registry.example.com/r1-posttrain-mlflow:3.17.2 .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The same versions as the project (pyproject.toml) and its tests (tests/infra/test_mlflow_postgres.py).
# psycopg 3, not psycopg2: SQLAlchemy 2.1 resolves postgresql:// URIs to it.
RUN pip install mlflow==3.17.2 "psycopg[binary]==3.3.9" boto3==1.44.5

RUN groupadd --gid 10001 mlflow \
    && useradd --uid 10001 --gid mlflow --no-create-home --home-dir /tmp mlflow
USER 10001:10001

EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000"]
