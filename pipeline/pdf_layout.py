"""Layout analysis for report-like PDFs on top of pdfplumber's word positions.

``page.extract_text()`` reads straight across two-column pages and keeps running
headers, so it scrambles reading order and leaks boilerplate into every passage.
Here we work from word boxes instead: drop lines that repeat at the same height on
many pages, find the column gutter per page, read columns top to bottom, and cut
paragraphs where the line pitch opens up or the font changes.
"""

from __future__ import annotations

import difflib
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pdfplumber

from pipeline.models import Block

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
ODD_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"), " "
)
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
BULLET_CID = re.compile(r"\(cid:(?:127|149|183)\)")
UNKNOWN_CID = re.compile(r"\(cid:\d+\)")
BULLET_START = re.compile(r"^(?:[•▪◦●○■\-–]|\d{1,2}[.)]|[a-z][.)])\s")
PAGE_NUMBER = re.compile(r"^(?:pagina\s+)?\d{1,4}(?:\s*(?:/|van|of)\s*\d{1,4})?$|^[ivxlcdm]{1,6}$", re.I)
# Words that stay hyphenated before a line break: "huisartsen- en ouderenzorg".
ELLIPSIS_FOLLOWERS = {"en", "of", "tot", "t/m", "noch", "als", "dan", "&"}


def clean_text(text: str) -> str:
    """Normalise a run of PDF text: NFC, ligatures, odd spaces, bullets drawn as cids."""
    text = BULLET_CID.sub("•", text)
    text = UNKNOWN_CID.sub("", text)
    for lig, repl in LIGATURES.items():
        text = text.replace(lig, repl)
    text = text.translate(ODD_SPACES).translate(INVISIBLE)
    return unicodedata.normalize("NFC", text)


@dataclass
class Line:
    """One printed line inside one column."""

    page: int
    top: float
    bottom: float
    x0: float
    x1: float
    words: list[str]
    size: float
    bold: bool
    column_right: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class PageLayout:
    """The lines of one page in reading order, with what was removed and why."""

    number: int
    lines: list[Line] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    columns: int = 1


def _word_rows(words: list[dict], tolerance: float = 2.0) -> list[list[dict]]:
    """Group words whose tops are within ``tolerance`` into rows, top to bottom."""
    rows: list[list[dict]] = []
    for word in sorted(words, key=lambda w: (w["top"], w["x0"])):
        if rows and abs(rows[-1][0]["top"] - word["top"]) <= tolerance:
            rows[-1].append(word)
        else:
            rows.append([word])
    return [sorted(row, key=lambda w: w["x0"]) for row in rows]


def _is_bold(fontname: str) -> bool:
    return bool(re.search(r"bold|black|heavy|semibold|demi", fontname, re.I))


def _make_line(page: int, row: list[dict], column_right: float) -> Line:
    sizes = [round(w["size"], 1) for w in row]
    bold_chars = sum(len(w["text"]) for w in row if _is_bold(w["fontname"]))
    return Line(
        page=page,
        top=min(w["top"] for w in row),
        bottom=max(w["bottom"] for w in row),
        x0=row[0]["x0"],
        x1=row[-1]["x1"],
        words=[clean_text(w["text"]) for w in row],
        size=Counter(sizes).most_common(1)[0][0],
        bold=bold_chars * 2 > sum(len(w["text"]) for w in row),
        column_right=column_right,
    )


def find_gutter(rows: list[list[dict]], width: float) -> float | None:
    """Return the x of the gap between two text columns, or None for one column.

    A gutter is an x in the middle of the page that almost no line covers while
    many lines lie fully on each side of it; justified single-column text covers
    every middle x on most lines, so it never qualifies.
    """
    if len(rows) < 6:
        return None
    lo, hi = int(width * 0.3), int(width * 0.7)
    coverage = [0] * (hi - lo)
    for row in rows:
        for w in row:
            for x in range(max(lo, int(w["x0"])), min(hi, int(w["x1"]) + 1)):
                coverage[x - lo] += 1
    least = min(coverage)
    if least > 0.15 * len(rows):
        return None
    candidates = [lo + i for i, c in enumerate(coverage) if c == least]
    # Take the middle of the widest run of least-covered x.
    runs: list[list[int]] = []
    for x in candidates:
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    run = max(runs, key=len)
    if len(run) < 6:
        return None
    gutter = (run[0] + run[-1]) / 2
    left = sum(1 for row in rows if any(w["x1"] <= gutter for w in row))
    right = sum(1 for row in rows if any(w["x0"] >= gutter for w in row))
    if left < 3 or right < 3:
        return None
    return gutter


def _justified_edge(rows: list[list[dict]]) -> float:
    """The column's right edge: where most lines end in justified text (a stray
    wide word or a superscript must not move it)."""
    ends = Counter(round(row[-1]["x1"]) for row in rows)
    if not ends:
        return 0.0
    edge, count = ends.most_common(1)[0]
    return float(edge) if count >= 3 else float(max(ends))


def _lines_of(page_no: int, words: list[dict]) -> list[Line]:
    rows = _word_rows(words)
    edge = _justified_edge(rows)
    return [_make_line(page_no, row, edge) for row in rows]


def _column_lines(page_no: int, words: list[dict], gutter: float | None) -> list[Line]:
    """Lines of a page in reading order: full-width rows cut the page into bands;
    inside a band the left column is read before the right one."""
    if gutter is None:
        return _lines_of(page_no, words)

    spanning_tops = [w["top"] for w in words if w["x0"] < gutter - 1 < gutter + 1 < w["x1"]]

    def is_full_width(word: dict) -> bool:
        return any(abs(word["top"] - t) <= 2.0 for t in spanning_tops)

    lines: list[Line] = []
    band: list[dict] = []

    def flush_band() -> None:
        lines.extend(_lines_of(page_no, [w for w in band if w["x1"] <= gutter]))
        lines.extend(_lines_of(page_no, [w for w in band if w["x1"] > gutter]))
        band.clear()

    for row in _word_rows(words):
        if any(is_full_width(w) for w in row):
            flush_band()
            lines.append(_make_line(page_no, row, max(w["x1"] for w in words)))
        else:
            band.extend(row)
    flush_band()
    return lines


def _normalised_margin_text(row: list[dict]) -> str:
    return re.sub(r"\d+", "#", " ".join(w["text"] for w in row)).strip().lower()


def find_running_lines(pages_rows: list[list[list[dict]]], heights: list[float]) -> set[str]:
    """Texts (digits masked) of margin lines that repeat on many pages: headers and footers."""
    counts: Counter[str] = Counter()
    for rows, height in zip(pages_rows, heights, strict=True):
        seen = {
            _normalised_margin_text(row)
            for row in rows
            if row[0]["top"] < height * 0.12 or row[0]["bottom"] > height * 0.88
        }
        counts.update(seen)
    threshold = max(2, int(0.5 * len(pages_rows) + 0.5))
    return {text for text, n in counts.items() if n >= threshold}


def analyse_pdf(
    pdf: pdfplumber.PDF, ocr_words: Mapping[int, list[dict]] | None = None
) -> tuple[list[PageLayout], list[str]]:
    """Read every page into reading-ordered lines without headers, footers or tables.

    ``ocr_words`` (page number → pdfplumber word dicts read from the OCR'd page,
    see ``pipeline.ocr``) replaces those pages' own text layer, so OCR output
    goes through the same header, column and paragraph analysis.
    """
    ocr_words = {n: _ocr_bullets(words) for n, words in _snap_ocr_sizes(ocr_words or {}).items()}
    warnings: list[str] = []
    pages_words: list[list[dict]] = []
    pages_rows: list[list[list[dict]]] = []
    heights: list[float] = []
    layouts: list[PageLayout] = []
    for number, page in enumerate(pdf.pages, start=1):
        layout = PageLayout(number=number)
        if number in ocr_words:
            words = [dict(w) for w in ocr_words[number]]
            pages_words.append(words)
            pages_rows.append(_word_rows(words))
            heights.append(float(page.height))
            layouts.append(layout)
            continue
        words = page.extract_words(extra_attrs=["fontname", "size"], keep_blank_chars=False)
        table_boxes = []
        for table in page.find_tables():
            cells = [[clean_text(c or "").replace("\n", " ").strip() for c in row] for row in table.extract()]
            cells = [row for row in cells if any(row)]
            if len(cells) >= 2 and max(len(r) for r in cells) >= 2:
                layout.tables.append(cells)
                table_boxes.append(table.bbox)
        if table_boxes:
            words = [w for w in words if not any(_inside(w, box) for box in table_boxes)]
        pages_words.append(words)
        pages_rows.append(_word_rows(words))
        heights.append(float(page.height))
        layouts.append(layout)

    running = find_running_lines(pages_rows, heights) if len(pages_rows) > 1 else set()
    # OCR reads the same header slightly differently from page to page: near matches count there.
    ocr_running = find_running_lines_ocr(pages_rows, heights) if ocr_words and len(pages_rows) > 1 else []
    for layout, rows, height, page in zip(layouts, pages_rows, heights, pdf.pages, strict=True):
        kept: list[dict] = []
        for row in rows:
            in_margin = row[0]["top"] < height * 0.12 or row[0]["bottom"] > height * 0.88
            text = " ".join(w["text"] for w in row).strip()
            if in_margin and (_normalised_margin_text(row) in running or PAGE_NUMBER.match(text)):
                continue
            if in_margin and layout.number in ocr_words and _ocr_margin_noise(text, ocr_running):
                continue
            kept.extend(row)
        gutter = find_gutter(_word_rows(kept), float(page.width))
        layout.columns = 1 if gutter is None else 2
        layout.lines = _column_lines(layout.number, kept, gutter)
    return layouts, warnings


def _snap_ocr_sizes(ocr_words: Mapping[int, list[dict]]) -> dict[int, list[dict]]:
    """OCR'd words get a size from their line's box, which grows with ascenders and descenders
    (9, 10, 11 pt on lines of one paragraph). Sizes within -20 %/+25 % of the body size become
    the body size, so only clearly larger lines count as headings or font changes."""
    sizes = Counter()
    for words in ocr_words.values():
        for w in words:
            sizes[round(float(w["size"]), 1)] += len(w["text"])
    if not sizes:
        return dict(ocr_words)
    body = sizes.most_common(1)[0][0]
    return {
        number: [{**w, "size": body} if 0.8 * body <= float(w["size"]) <= 1.25 * body else w for w in words]
        for number, words in ocr_words.items()
    }


# What Tesseract makes of a printed bullet (•) at the start of a line.
OCR_BULLETS = {"*", "«", "»", "°", "©", "®", "¢", "e", "o", "+", "•", "·"}


def _ocr_bullets(words: list[dict]) -> list[dict]:
    """A lone bullet look-alike opening a line of an OCR'd page is the bullet it was printed as."""
    out = [dict(w) for w in words]
    by_id = {id(w): w for w in out}
    for row in _word_rows(out):
        first = row[0]
        if len(row) > 1 and first["text"] in OCR_BULLETS and row[1]["text"][:1].isupper():
            by_id[id(first)]["text"] = "•"
    return out


def _letters(text: str) -> str:
    return re.sub(r"[^a-zà-ÿ]+", "", text.lower())


def _similar(a: str, b: str, ratio: float = 0.85) -> bool:
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= ratio and matcher.quick_ratio() >= ratio and matcher.ratio() >= ratio


def find_running_lines_ocr(pages_rows: list[list[list[dict]]], heights: list[float]) -> list[str]:
    """Running headers/footers of OCR'd pages: margin lines (letters only) that nearly match
    (difflib ratio >= 0.85) a margin line on at least half the pages, since OCR misreads a
    character or adds a speckle as punctuation on some pages."""
    margins = []
    for rows, height in zip(pages_rows, heights, strict=True):
        texts = {_letters(" ".join(w["text"] for w in row)) for row in rows if row[0]["top"] < height * 0.12}
        texts |= {_letters(" ".join(w["text"] for w in row)) for row in rows if row[0]["bottom"] > height * 0.88}
        margins.append({t for t in texts if len(t) >= 4})
    threshold = max(2, int(0.5 * len(pages_rows) + 0.5))
    running = []
    for text in sorted(set().union(*margins)):
        if sum(any(_similar(text, other) for other in page) for page in margins) >= threshold:
            running.append(text)
    return running


def _ocr_margin_noise(text: str, running: list[str]) -> bool:
    """A margin line of an OCR'd page that is a (misread) running line or page number."""
    letters = _letters(text)
    if not letters:
        return len(text) <= 8  # "3.", "| 12", "- 4 -": a page number with specks
    return any(_similar(letters, r) for r in running)


def _inside(word: dict, box: tuple[float, float, float, float]) -> bool:
    x0, top, x1, bottom = box
    cx, cy = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
    return x0 <= cx <= x1 and top <= cy <= bottom


# --------------------------------------------------------------------------- blocks


@dataclass
class _Style:
    body_size: float
    pitch: float
    heading_sizes: list[float]

    def is_heading(self, line: Line) -> bool:
        return line.size > self.body_size + 0.5 or (line.bold and line.size >= self.body_size)

    def is_footnote(self, line: Line) -> bool:
        return line.size < self.body_size - 0.75

    def level(self, line: Line) -> int:
        base = (
            self.heading_sizes.index(line.size) + 1 if line.size in self.heading_sizes else len(self.heading_sizes) + 1
        )
        numbering = re.match(r"^(\d+(?:\.\d+)*)\.?\s", line.text)
        depth = numbering.group(1).count(".") if numbering else 0
        return base + depth


def _document_style(lines: list[Line]) -> _Style:
    size_chars: Counter[float] = Counter()
    for line in lines:
        size_chars[line.size] += len(line.text)
    body = size_chars.most_common(1)[0][0] if size_chars else 10.0
    pitches = [
        round(b.top - a.top, 1)
        for a, b in zip(lines, lines[1:], strict=False)
        if a.page == b.page and a.size == b.size == body and 0 < b.top - a.top < body * 3
    ]
    pitch = statistics.mode(pitches) if pitches else body * 1.3
    heading_sizes = sorted(
        {line.size for line in lines if line.size > body + 0.5 or (line.bold and line.size >= body)},
        reverse=True,
    )
    return _Style(body_size=body, pitch=pitch, heading_sizes=heading_sizes)


def _line_kind(line: Line, style: _Style) -> str:
    if style.is_heading(line):
        return f"heading:{line.size}"
    if style.is_footnote(line):
        return "footnote"
    return "paragraph"


def join_lines(lines: list[str], vocabulary: set[str]) -> str:
    """Join printed lines into running text, undoing line-end hyphenation.

    ``samen-`` + ``werking`` becomes ``samenwerking``, but a hyphen that is part of
    the word stays (``GHZ-`` + ``instellingen``, ``Noord-`` + ``Holland``, or a
    compound the document also prints unbroken with its hyphen), and Dutch
    ellipsis hyphens keep their space (``huisartsen- en ouderenzorg``).
    """
    out = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not out:
            out = line
            continue
        if out.endswith("\u00ad"):
            out = out[:-1] + line
        elif _inside_url(out):
            out += line
        elif re.search(r"\w-$", out):
            head = out.rsplit(" ", 1)[-1][:-1]  # the word before the hyphen
            nxt = line.split(" ", 1)[0]
            if _keep_hyphen_space(nxt):
                out += " " + line
            elif _hyphen_is_real(head, nxt, vocabulary):
                out += line
            else:
                out = out[:-1] + line
        else:
            out += " " + line
    return out


def _inside_url(text: str) -> bool:
    """A URL wrapped at the line end continues without a space."""
    last = text.rsplit(" ", 1)[-1]
    return bool(re.match(r"(https?://|www\.)\S*[\w/-]$", last))


def _keep_hyphen_space(next_word: str) -> bool:
    return next_word.lower().strip(",.;:") in ELLIPSIS_FOLLOWERS


def _hyphen_is_real(head: str, nxt: str, vocabulary: set[str]) -> bool:
    """Decide whether the hyphen before a line break belongs to the word."""
    last_part = re.split(r"[-/(“‘\"']", head)[-1]
    if not last_part or not nxt:
        return True
    first_next = re.sub(r"^[(“‘\"']", "", nxt)
    if last_part.isupper() or last_part[-1].isdigit() or (first_next[:1].isupper()):
        return True
    if first_next[:1].isdigit():
        return True
    joined = (head + first_next).lower().strip(".,;:!?)”’\"'")
    hyphened = (head + "-" + first_next).lower().strip(".,;:!?)”’\"'")
    if hyphened in vocabulary and joined not in vocabulary:
        return True
    return False


def build_blocks(layouts: list[PageLayout]) -> list[Block]:
    """Cut reading-ordered lines into headings, paragraphs, footnotes and tables."""
    lines = [line for layout in layouts for line in layout.lines]
    if not lines and not any(layout.tables for layout in layouts):
        return []
    style = _document_style(lines)
    vocabulary = _vocabulary(lines)

    groups: list[tuple[str, list[Line]]] = []
    for line in lines:
        kind = _line_kind(line, style)
        if groups:
            prev_kind, prev_lines = groups[-1]
            prev = prev_lines[-1]
            if prev_kind == kind and _continues(prev, line, style):
                prev_lines.append(line)
                continue
        groups.append((kind, [line]))

    blocks: list[Block] = []
    section: list[tuple[int, str]] = []
    tables_by_page = {layout.number: layout.tables for layout in layouts if layout.tables}
    emitted_tables: set[int] = set()
    for kind, group in groups:
        page = group[0].page
        for table_page in sorted(p for p in tables_by_page if p <= page and p not in emitted_tables):
            blocks.extend(_table_blocks(tables_by_page[table_page], table_page, section))
            emitted_tables.add(table_page)
        text = join_lines([line.text for line in group], vocabulary)
        if not text:
            continue
        if kind.startswith("heading"):
            level = style.level(group[0])
            while section and section[-1][0] >= level:
                section.pop()
            blocks.append(Block("heading", text, group[0].page, group[-1].page, _path(section), None, level))
            section.append((level, text))
        else:
            blocks.append(
                Block(
                    "footnote" if kind == "footnote" else "paragraph",
                    text,
                    group[0].page,
                    group[-1].page,
                    _path(section),
                )
            )
    for table_page in sorted(p for p in tables_by_page if p not in emitted_tables):
        blocks.extend(_table_blocks(tables_by_page[table_page], table_page, section))
    return blocks


def _path(section: list[tuple[int, str]]) -> tuple[str, ...]:
    return tuple(text for _, text in section)


def _table_blocks(tables: list[list[list[str]]], page: int, section: list[tuple[int, str]]) -> list[Block]:
    return [
        Block("table", " | ".join(cell for cell in row), page, page, _path(section))
        for table in tables
        for row in table
    ]


def _continues(prev: Line, line: Line, style: _Style) -> bool:
    """Whether ``line`` continues the paragraph that ``prev`` is part of."""
    if BULLET_START.match(line.text) or line.text.startswith("•"):
        return False
    if line.size != prev.size:
        return False
    same_column = line.page == prev.page and line.top > prev.top and abs(line.column_right - prev.column_right) < 2
    if same_column:
        # Leading grows with the font size, so a 16 pt title keeps its lines together.
        pitch = style.pitch * max(1.0, line.size / style.body_size)
        return line.top - prev.top <= pitch * 1.25
    # Column or page break: a justified line that runs to the column edge and does
    # not end a sentence means the paragraph flows on.
    full_last_line = prev.x1 >= prev.column_right - 4
    return full_last_line and not re.search(r"[.!?:”’\"]$", prev.text)


def _vocabulary(lines: list[Line]) -> set[str]:
    """Words printed whole (not at a line end), used to settle hyphenation."""
    vocab: set[str] = set()
    for line in lines:
        for word in line.words[:-1]:
            vocab.add(word.lower().strip(".,;:!?()“”‘’\"'"))
    return vocab
