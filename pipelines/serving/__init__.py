"""Model serving: a SageMaker-compatible endpoint with weighted variants, shadow and sticky routing.

No Dagster in this package except where a module says so. The server (`app`, `server`) imports neither
MLflow nor pandas: it reads each variant's booster and feature spec from a folder that the publisher
(`config.prepare_models`) filled from the registry.
"""
