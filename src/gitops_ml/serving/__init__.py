"""The serving app (FastAPI) and the hot-reloaded production model it serves."""
