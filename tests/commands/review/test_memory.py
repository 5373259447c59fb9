"""``review`` streams: its peak memory does not grow with the number of documents, for text and SARIF."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from bench.review import stream
from webhook.cli import build_parser
from webhook.commands.review import review_command


@pytest.mark.parametrize("output", ["text", "sarif"])
def test_peak_memory_is_flat_with_the_document_count(output: str, tmp_path: Path) -> None:
    def peak(n: int) -> int:
        path = tmp_path / f"{n}.yaml"
        path.write_text(stream(n), encoding="utf-8")
        args = build_parser().parse_args(["review", str(path), "-o", output])
        tracemalloc.start()
        review_command(args, stdin=io.StringIO(), stdout=_Sink(), stderr=io.StringIO())
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(8)  # compiled validators, caches: once per process
    small, large = peak(40), peak(400)
    assert large < small * 1.3, (small, large)


class _Sink(io.StringIO):
    """Standard output that keeps nothing (the text is written and gone, as to a pipe)."""

    def write(self, s: str) -> int:
        return len(s)
