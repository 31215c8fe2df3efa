"""Data contracts (ODCS v3.1 subset): load, validate frames, build request models, diff versions.

Import the modules (`gitops_ml.contracts.model`, `.validate`, `.requests`, `.diff`); nothing is
re-exported here, so importing the package does not pull in pandas or pydantic.
"""
