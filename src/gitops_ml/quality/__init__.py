"""Statistical data and model quality checks (deepchecks, in its own environment), soft next to the
hard contract rules.

Import the modules (`gitops_ml.quality.deepchecks_suites`, `.support`, `.environment`); nothing is
re-exported here, so `python -m gitops_ml.quality build` and the environment check stay cheap.
"""
