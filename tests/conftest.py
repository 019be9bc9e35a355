"""Shared fixtures: tiny run parameters so notebook runs stay quick."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# Copies of the input files in ../shared/cases (files a real user might hand the project), kept here
# so that CI on a clean clone checks them too.
CASES = PROJECT / "tests" / "data" / "cases"
TINY = ["-p", "rows=300", "-p", "epochs=1", "-p", "n_orders=2", "-p", "ig_rows=50"]


@pytest.fixture(scope="session")
def project() -> Path:
    return PROJECT
