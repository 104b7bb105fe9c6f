"""Prefect flows: the only layer that knows about orchestration."""
