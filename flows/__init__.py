"""Prefect flows: wiring only; the logic lives in src/gitops_ml."""
