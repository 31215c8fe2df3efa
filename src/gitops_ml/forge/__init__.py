"""Git and GitHub: local git commands, a PyGithub client, token lookup, the retraining PR.

Import the modules (`gitops_ml.forge.git`, `.github`, `.retrain_pr`, `.tokens`); nothing is
re-exported here, so importing the package is cheap and has no side effects.
"""
