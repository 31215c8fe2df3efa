"""Use cases: one module per lifecycle step (pr_check, promote, monitor, retrain).

Each drives the pure packages and the adapters (data readers, model store, prediction store,
git/GitHub) and returns a typed result; flows/ wraps them as Prefect tasks, the CLI calls both.
"""
