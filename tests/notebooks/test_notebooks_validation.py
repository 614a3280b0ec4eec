"""notebooks/model_validation.ipynb runs top to bottom on small simulated data without a cell error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "model_validation.ipynb"
#: Small but with enough frauds in every training slice (the same world as tests/detection).
SMALL = {"FRAUDLENS_NB_CARDS": "400", "FRAUDLENS_NB_DAYS": "40", "FRAUDLENS_NB_RESAMPLES": "50"}


def test_the_notebook_has_no_stored_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_model_validation_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel spec launches "python": make it this interpreter (the venv), with the repo importable.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("FRAUDLENS_NB_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    html = tmp_path / "work" / "validation" / "report.html"
    assert html.is_file() and (html.parent / "report.json").is_file()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    images = sum(out.get("data", {}).get("text/html", "").count('src="data:image/png;base64,') for out in outputs)
    assert images == 7  # every figure of the report, embedded
    assert not [out for out in outputs if out.output_type == "error"]
