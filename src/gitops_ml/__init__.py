"""gitops-ml: GitOps training repository for tabular ML."""

__version__ = "0.1.0"
