"""Streaming telemetry: the producer, three transports, exactly-once landing, rolling windows, online anomaly
detection and its evaluation. Pure Python and polars; the Dagster assets and sensor are thin wrappers."""
