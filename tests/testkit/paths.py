"""Where the repository's files are, for tests and bench alike (one constant instead of ``Path(__file__)``
arithmetic that breaks when a test file moves)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# the tests' own fixtures: CRDs the cluster needs besides KubeVirt's, schemas, recorded answers of other tools
DATA = REPO / "tests" / "data"
