"""Edge bundles: a signed model bundle (TUF), a device agent that never bricks, an IoT-Jobs-style rollout.

No Dagster in this package. `runtime` is the only module a device needs besides the agent, and it imports
numpy, xgboost and the standard library only.
"""
