"""Reading a CSV export row by row, with each row's line number and each broken row named.

Chinese Excel saves UTF-8 (often with a BOM) or GB18030. A row with an unclosed quote would,
read naively, swallow every line after it into one field and be imported as data; here it is
reported ("line 7: unclosed quote") and reading resumes on the next line. A row with more
fields than the header is reported too. Everything else is returned with its first line number,
so an importer can say "line 4012: ..." about the line a person sees in their editor.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path


class CsvFileError(ValueError):
    """The file as a whole cannot be read (encoding, no header)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str


class CsvRows(list):
    """The rows (dicts keyed by header) plus ``lines`` (each row's first line number),
    ``fieldnames`` and ``problems`` (rows left out, with their line and why)."""

    def __init__(self, rows: list[dict[str, str]], lines: list[int], fieldnames: list[str],
                 problems: list[RowProblem]) -> None:
        super().__init__(rows)
        self.lines = lines
        self.fieldnames = fieldnames
        self.problems = problems


def decode(raw: bytes, name: str = "file") -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvFileError(f"{name}: neither UTF-8 nor GB18030 text")


def parse_csv_text(text: str, name: str = "file") -> CsvRows:
    physical = text.splitlines(keepends=True)
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    fieldnames: list[str] | None = None
    start = 0  # index into physical of the next line to read
    while start < len(physical):
        reader = csv.reader(io.StringIO("".join(physical[start:]), newline=""), strict=True)
        consumed = 0  # physical lines the reader finished before the row being read
        try:
            for record in reader:
                first = start + consumed + 1  # 1-based line number of this record's first line
                consumed = reader.line_num
                if not record or all(not f.strip() for f in record):
                    continue
                if fieldnames is None:
                    fieldnames = [f.strip() for f in record]
                    continue
                if len(record) > len(fieldnames):
                    problems.append(RowProblem(first, f"{len(record)} fields where the header has "
                                                      f"{len(fieldnames)} (a stray comma or quote?)"))
                    continue
                record = record + [""] * (len(fieldnames) - len(record))
                rows.append(dict(zip(fieldnames, record)))
                lines.append(first)
            start = len(physical)
        except csv.Error as e:
            bad = start + consumed + 1
            why = "unclosed quote" if "end of data" in str(e) else f"misplaced quote ({e})"
            problems.append(RowProblem(bad, f"{why}: the row is left out"))
            start = bad  # resume on the line after the broken row's first line
    if fieldnames is None:
        raise CsvFileError(f"{name}: no header row")
    return CsvRows(rows, lines, fieldnames, problems)


def read_csv_rows(path: str | Path) -> CsvRows:
    path = Path(path)
    return parse_csv_text(decode(path.read_bytes(), str(path)), str(path))
