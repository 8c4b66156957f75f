"""notebooks/explore.ipynb runs top to bottom on a 2013 lake with a registered champion (issue 19.5): the
warehouse and the registry found through the environment, as the notebook's reader finds their own."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.ml.tracking import QUIET_ENV
from tests.conftest import RegisteredDelayModel, write_warehouse

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


@pytest.mark.e2e
def test_the_exploration_notebook_runs_on_the_demo_lake(
    warehouse_tables, registered_delay_model: RegisteredDelayModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_warehouse(tmp_path / "lake", warehouse_tables)
    settings = registered_delay_model.settings
    for name, value in {**QUIET_ENV, "TRIBUTARY_LAKE_ROOT": str(tmp_path / "lake"),
                        "TRIBUTARY_MLFLOW_TRACKING_URI": settings.tracking_uri,
                        "TRIBUTARY_MLFLOW_ARTIFACT_LOCATION": settings.artifact_location,
                        "MPLBACKEND": "module://matplotlib_inline.backend_inline"}.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit the notebook without outputs"
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell's error

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert f"lake: {tmp_path / 'lake'}\n" in text, text
    assert f"delay_model v{registered_delay_model.champion} on 2013-" in text, text
    assert any("image/png" in out.get("data", {}) for out in outputs), "the delay chart was not drawn"
    assert "roc_auc" in "".join(str(out.get("data", {}).get("text/plain", "")) for out in outputs)
