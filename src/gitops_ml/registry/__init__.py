"""Model registry: skops artifacts with checked loads, the model store, the production pointer."""
