"""Shared fixtures: tiny run parameters so notebook runs stay quick."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
CASES = PROJECT.parent / "shared" / "cases"
TINY = ["-p", "rows=300", "-p", "epochs=1", "-p", "n_orders=2", "-p", "ig_rows=50"]


@pytest.fixture(scope="session")
def project() -> Path:
    return PROJECT
