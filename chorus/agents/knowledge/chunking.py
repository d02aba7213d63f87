"""Split a parsed document into chunks that keep their position (ordinal, first/last line, page).

Strategies (`chunk_size` is a target in words):
- `paragraph` (default): paragraphs (runs of lines, broken at blank lines and headings) packed together
  up to `chunk_size` within a section (same heading, same PDF page, so a citation names one page);
  a paragraph longer than that is cut like `fixed_size`.
- `fixed_size`: a window of `chunk_size` words sliding with 1/8 overlap, regardless of structure.
- `semantic`: paragraphs are embedded and a new chunk starts where the topic shifts, i.e. where the
  similarity of neighbouring paragraphs falls below both 0.5 and the document's lower quartile, at a
  heading, or when `chunk_size` is reached.
The offline embedder reads at most 256 tokens (about 190 words) per chunk; keep `chunk_size` below that
for the vectors to cover whole chunks (full-text search always covers them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from chorus.agents.knowledge.minilm import Matrix
from chorus.agents.knowledge.parsers import Line, ParsedDocument

Strategy = Literal["fixed_size", "paragraph", "semantic"]
STRATEGIES: tuple[Strategy, ...] = ("fixed_size", "paragraph", "semantic")
DEFAULT_CHUNK_SIZE = 150


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    content: str
    start_line: int
    end_line: int
    page: int | None
    heading: str

    def embedding_text(self, title: str) -> str:
        """What the vector is made from: where the chunk sits, then what it says."""
        return f"{self.context(title)}\n{self.content}"

    def context(self, title: str) -> str:
        return f"{title} — {self.heading}" if self.heading and self.heading != title else title


@dataclass
class _Piece:
    lines: list[Line]

    @property
    def words(self) -> int:
        return sum(len(line.text.split()) for line in self.lines)


def _paragraphs(lines: Sequence[Line]) -> list[_Piece]:
    pieces: list[_Piece] = []
    current: list[Line] = []
    for line in lines:
        starts_new = bool(current) and (
            line.line > current[-1].line + 1 or line.heading != current[-1].heading or line.page != current[-1].page
        )
        if starts_new:
            pieces.append(_Piece(current))
            current = []
        current.append(line)
    if current:
        pieces.append(_Piece(current))
    return pieces


def _fixed(lines: Sequence[Line], size: int) -> list[list[tuple[str, Line]]]:
    """Windows of `size` words; each word keeps the line it came from."""
    words = [(w, line) for line in lines for w in line.text.split()]
    if not words:
        return []
    step = max(1, size - size // 8)
    windows = []
    for start in range(0, len(words), step):
        windows.append(words[start : start + size])
        if start + size >= len(words):
            break
    return windows


def _chunk_from_words(ordinal: int, words: list[tuple[str, Line]]) -> Chunk:
    first, last = words[0][1], words[-1][1]
    text_lines: list[str] = []
    current: Line | None = None
    for word, line in words:
        if line is not current:
            text_lines.append(word)
            current = line
        else:
            text_lines[-1] += " " + word
    return Chunk(ordinal, "\n".join(text_lines), first.line, last.line, first.page, first.heading)


def _chunk_from_lines(ordinal: int, lines: list[Line]) -> Chunk:
    return Chunk(
        ordinal, "\n".join(line.text for line in lines), lines[0].line, lines[-1].line, lines[0].page, lines[0].heading
    )


def _pack(groups: list[list[_Piece]], size: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for group in groups:
        buffer: list[Line] = []
        words = 0
        for piece in group:
            if piece.words > size:  # too long on its own: flush, then cut it
                if buffer:
                    chunks.append(_chunk_from_lines(len(chunks), buffer))
                    buffer, words = [], 0
                for window in _fixed(piece.lines, size):
                    chunks.append(_chunk_from_words(len(chunks), window))
                continue
            if buffer and words + piece.words > size:
                chunks.append(_chunk_from_lines(len(chunks), buffer))
                buffer, words = [], 0
            buffer.extend(piece.lines)
            words += piece.words
        if buffer:
            chunks.append(_chunk_from_lines(len(chunks), buffer))
    return chunks


def _by_heading(pieces: list[_Piece]) -> list[list[_Piece]]:
    groups: list[list[_Piece]] = []
    for piece in pieces:
        last = groups[-1][-1].lines[0] if groups else None
        if last is not None and (last.heading, last.page) == (piece.lines[0].heading, piece.lines[0].page):
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def _semantic_groups(pieces: list[_Piece], embed: Callable[[list[str]], Matrix]) -> list[list[_Piece]]:
    if len(pieces) < 3:
        return _by_heading(pieces)
    vectors = embed([" ".join(line.text for line in p.lines) for p in pieces])
    similarity = np.sum(vectors[:-1] * vectors[1:], axis=1)
    cut = min(0.5, float(np.percentile(similarity, 25)))
    groups: list[list[_Piece]] = [[pieces[0]]]
    for i, piece in enumerate(pieces[1:]):
        last = groups[-1][-1].lines[0]
        new_section = (piece.lines[0].heading, piece.lines[0].page) != (last.heading, last.page)
        if new_section or similarity[i] < cut:
            groups.append([piece])
        else:
            groups[-1].append(piece)
    return groups


def chunk_document(
    doc: ParsedDocument,
    *,
    strategy: Strategy = "paragraph",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    embed: Callable[[list[str]], Matrix] | None = None,
) -> list[Chunk]:
    if strategy == "fixed_size":
        return [_chunk_from_words(i, w) for i, w in enumerate(_fixed(doc.lines, chunk_size))]
    pieces = _paragraphs(doc.lines)
    if strategy == "semantic":
        if embed is None:
            raise ValueError("semantic chunking needs an embedding function")
        return _pack(_semantic_groups(pieces, embed), chunk_size)
    return _pack(_by_heading(pieces), chunk_size)
