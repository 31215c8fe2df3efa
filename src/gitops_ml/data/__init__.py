"""Data: the synthetic churn generator, the batch manifest, acquisition (and the split).

Import the modules (`gitops_ml.data.acquire`, `.manifest`, `.generator`); nothing is re-exported
here, so importing the package stays cheap.
"""
