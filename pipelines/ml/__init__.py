"""The ML stage without Dagster: features, split, baseline, training, registry, drift (see assets/ml.py)."""
