"""Git and GitHub: local git commands, the one GitHub REST client, token lookup, the retraining PR.

Import the modules (`gitops_ml.forge.git`, `.github_api`, `.github`, `.retrain_pr`, `.tokens`); nothing is
re-exported here, so importing the package is cheap and has no side effects.
"""
