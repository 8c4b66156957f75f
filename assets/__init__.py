"""The stages' Dagster assets, one module per stage.

The stage modules use beta parameters on purpose (the single-run backfill policy, partition mappings that allow a
missing upstream day; see pipelines/definitions.py). Importing them from a command that records its events, or
from a test, must not print a warning per parameter on stderr, so the package filters them once.
"""

import warnings

from dagster import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
