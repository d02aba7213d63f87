"""Turn an uploaded file into lines of text that remember where they came from (line, page, heading).

Parsers: plain text and Markdown (stdlib), HTML (BeautifulSoup), PDF (pypdf), Word .docx (python-docx),
CSV (stdlib), Excel .xlsx (openpyxl). Whatever cannot be read raises UnreadableDocument with the reason;
ingestion then fails its job and writes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

from chorus.agents.errors import InvalidInput, UnsupportedMediaType


class UnreadableDocument(InvalidInput):
    code = "unreadable_document"


class UnsupportedFileType(UnsupportedMediaType):
    code = "unsupported_file_type"


@dataclass(frozen=True)
class Line:
    text: str
    line: int  # 1-based line in the source (row for spreadsheets, paragraph for .docx)
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    content_type: str
    lines: list[Line]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def content_type_for(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFileType(
            f"'{filename}' is not a supported file type; upload one of: {', '.join(sorted(SUPPORTED))}"
        )
    return SUPPORTED[suffix]


def _decode(data: bytes, filename: str) -> str:
    if b"\x00" in data[:4096]:
        raise UnreadableDocument(f"'{filename}' contains binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"'{filename}' is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _fallback_title(filename: str) -> str:
    return PurePath(filename).stem.replace("_", " ").replace("-", " ").strip() or filename


def parse_text(text: str, filename: str, *, markdown: bool) -> ParsedDocument:
    lines: list[Line] = []
    heading = ""
    title = ""
    in_code = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if markdown and stripped.startswith("```"):
            in_code = not in_code
        found = _MD_HEADING.match(raw) if markdown and not in_code else None
        if found:
            heading = found.group(2)
            if not title and len(found.group(1)) == 1:
                title = heading
        if stripped:
            lines.append(Line(raw.rstrip(), number, None, heading))
    content_type = "text/markdown" if markdown else "text/plain"
    return ParsedDocument(title or _fallback_title(filename), content_type, lines)


def _parse_html(data: bytes, filename: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, filename), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "svg"]):
        tag.decompose()
    blocks = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption"]
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    lines: list[Line] = []
    heading = ""
    for number, el in enumerate(soup.find_all(blocks), start=1):
        if el.find(blocks):  # the innermost block carries the text
            continue
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            heading = text
            title = title or text
        lines.append(Line(text, el.sourceline or number, None, heading))
    if not lines and soup.body is not None:
        return parse_text(soup.body.get_text("\n"), filename, markdown=False)
    return ParsedDocument(title or _fallback_title(filename), "text/html", lines)


def _parse_pdf(data: bytes, filename: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument(f"'{filename}' is an encrypted PDF; upload it without a password")
        lines: list[Line] = []
        for page_number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for number, raw in enumerate(text.splitlines(), start=1):
                if raw.strip():
                    lines.append(Line(raw.rstrip(), number, page_number, ""))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"'{filename}' is not a readable PDF: {exc}") from None
    if not lines:
        raise UnreadableDocument(
            f"no text could be extracted from '{filename}'; scanned PDFs need OCR, which Chorus does not do"
        )
    return ParsedDocument(str(meta_title).strip() or lines[0].text[:120], "application/pdf", lines)


def _parse_docx(data: bytes, filename: str) -> ParsedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise UnreadableDocument(f"'{filename}' is not a readable .docx file: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and lxml errors surface as various types
        raise UnreadableDocument(f"'{filename}' is not a readable .docx file: {type(exc).__name__}") from None
    lines: list[Line] = []
    heading = ""
    title = (document.core_properties.title or "").strip()
    for number, paragraph in enumerate(document.paragraphs, start=1):
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            heading = text
            title = title or text
        lines.append(Line(text, number, None, heading))
    base = len(document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            base += 1
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                lines.append(Line(" | ".join(cells), base, None, heading))
    return ParsedDocument(title or _fallback_title(filename), SUPPORTED[".docx"], lines)


def _rows_as_lines(rows: Iterator[list[str]], heading: str, first_line: int = 1) -> list[Line]:
    header: list[str] | None = None
    lines: list[Line] = []
    for number, row in enumerate(rows, start=first_line):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        pairs = [f"{h or f'column {i + 1}'}: {v}" for i, (h, v) in enumerate(zip(header, cells, strict=False)) if v]
        lines.append(Line("; ".join(pairs), number, None, heading))
    return lines


def _parse_csv(data: bytes, filename: str) -> ParsedDocument:
    text = _decode(data, filename)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        lines = _rows_as_lines(iter(csv.reader(io.StringIO(text), dialect)), _fallback_title(filename))
    except csv.Error as exc:
        raise UnreadableDocument(f"'{filename}' is not valid CSV: {exc}") from None
    return ParsedDocument(_fallback_title(filename), "text/csv", lines)


def _parse_xlsx(data: bytes, filename: str) -> ParsedDocument:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for bad files
        raise UnreadableDocument(f"'{filename}' is not a readable .xlsx workbook: {type(exc).__name__}") from None
    lines: list[Line] = []
    try:
        for sheet in book.worksheets:
            rows = ([("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True))
            lines.extend(_rows_as_lines(rows, sheet.title))
    finally:
        book.close()
    return ParsedDocument(_fallback_title(filename), SUPPORTED[".xlsx"], lines)


def parse_document(filename: str, data: bytes) -> ParsedDocument:
    """Parse by file extension. Raises UnsupportedFileType or UnreadableDocument; never returns empty text."""
    content_type = content_type_for(filename)
    if not data.strip():
        raise UnreadableDocument(f"'{filename}' is empty")
    if content_type in ("text/plain", "text/markdown"):
        parsed = parse_text(_decode(data, filename), filename, markdown=content_type == "text/markdown")
    elif content_type == "text/html":
        parsed = _parse_html(data, filename)
    elif content_type == "application/pdf":
        parsed = _parse_pdf(data, filename)
    elif content_type == "text/csv":
        parsed = _parse_csv(data, filename)
    elif content_type == SUPPORTED[".docx"]:
        parsed = _parse_docx(data, filename)
    else:
        parsed = _parse_xlsx(data, filename)
    if not parsed.lines:
        raise UnreadableDocument(f"'{filename}' contains no text")
    return parsed
