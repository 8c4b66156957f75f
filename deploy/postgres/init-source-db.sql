-- Runs once, when the compose `postgres` volume is first created: a second database for the operational
-- source that `tributary seed` fills (the Dagster instance keeps its own database, DAGSTER_PG_DB).
CREATE DATABASE tributary_source;
