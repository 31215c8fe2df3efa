"""`python -m gitops_ml ...` is the same as the `gitops-ml` console script."""

from gitops_ml.cli import run

if __name__ == "__main__":
    run()
