"""Names that look unused to vulture but are called by a framework; `make lint` passes this file to vulture.

The config runs vulture at 80% confidence (unused imports and variables, unreachable code). With this file,
`vulture --min-confidence 60` lists no unused function either (only dataclass fields and constants read by name),
which is how dead functions are found by hand.
"""

# Framework hooks, listed so that a run at 60% confidence stays short: click commands registered by decorator,
# tuf's FetcherInterface._fetch, mlflow's PythonModel.load_context, pytest autouse fixtures.
# (Bare names: vulture counts them as used; this file is never imported.)
keygen, serve_repo, list_cmd, retrain, evaluate, bridge  # noqa
_fetch, load_context, show  # noqa
_isolated_home, _mlflow_offline, _broker, pytestmark  # noqa
