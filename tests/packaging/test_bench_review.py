"""bench/review.py runs: a small stream, schema on and off, one output."""

from __future__ import annotations

import pytest
import yaml

from bench import review


def test_the_stream_has_the_mixed_documents_each_named() -> None:
    docs = list(yaml.safe_load_all(review.stream(8)))
    assert [d["kind"] for d in docs[:4]] == ["Pod", "Pod", "VirtualMachineInstance", "VirtualMachine"]
    assert len({d["metadata"]["name"] for d in docs}) == 8


def test_the_review_bench_prints_its_table_and_the_schema_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert review.main(["--documents", "8", "--small", "0", "--outputs", "text"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n        8  text") == 2
    assert "schema cost, 8 documents, -o text: " in out
