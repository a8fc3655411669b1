"""Transcripts from transcription tools: WebVTT, SRT and timestamped DOCX/TXT → speaker turns.

Interviews reach researchers as the output of Teams or Zoom (WebVTT with
``<v Name>`` voice tags or ``Naam:`` in the cue text), subtitle-style SRT,
Dutch transcription services and Whisper-based tools (``[00:01:23] Spreker 1:
…``, ``Spreker 1 (00:01:23): …``, a ``00:01:23 Naam`` line followed by the
text, or a Word table with time / speaker / text columns). All of them become
the same thing here: a list of cues (start, end, speaker, text), cleaned of
cue artefacts, merged into one ``turn`` block per run of one speaker, with the
turn's time span kept so an analyst can find the moment in the recording.

Parsing uses the maintained parsers where they exist (``webvtt-py``, ``srt``).
This module knows nothing about passages or the store; ``pipeline.ingest``
calls it and turns :class:`TranscriptError` into its one-line ``FILE: reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.models import Block
from pipeline.pdf_layout import clean_text

# A cue may start before the previous one ends by this much (rounding in exports).
OVERLAP_TOLERANCE_S = 1.0
# Speakerless cues further apart than this start a new paragraph.
PARAGRAPH_GAP_S = 3.0
# A timestamped TXT/DOCX needs at least this many timestamped turns to count as a transcript.
MIN_TIMESTAMPED_TURNS = 3


class TranscriptError(ValueError):
    """A transcript that cannot be read; ``reason`` is one line without the file name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Cue:
    """One timed piece of speech as the tool exported it."""

    start: float
    end: float | None
    speaker: str | None
    text: str
    label: str = ""  # where it came from, for error messages ("cue 4", "regel 12")


# --------------------------------------------------------------------------- time stamps

_TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
TIMESTAMP = re.compile(rf"^{_TS}$")


def parse_timestamp(text: str) -> float:
    """``01:02:03.500``, ``1:02:03``, ``02:03`` or ``02:03,5`` → seconds."""
    text = text.strip().replace(",", ".")
    parts = text.split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2]) if len(parts) >= 2 else 0
    hours = int(parts[-3]) if len(parts) >= 3 else 0
    return hours * 3600 + minutes * 60 + seconds


def format_timestamp(seconds: float | None) -> str:
    """Seconds → ``HH:MM:SS`` (what researchers see in the review screen and exports)."""
    if seconds is None:
        return ""
    whole = int(round(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def origin_note(passage: object) -> str:
    """One Dutch line on where a passage's text came from (a recording's time span, OCR), or ""."""
    parts = []
    start, end = getattr(passage, "time_start", None), getattr(passage, "time_end", None)
    if start is not None:
        span = format_timestamp(start) + (f"–{format_timestamp(end)}" if end is not None else "")
        speaker = getattr(passage, "speaker", None)
        parts.append(f"Tijd in de opname {span}" + (f" ({speaker})" if speaker else ""))
    if getattr(passage, "ocr", False):
        parts.append("tekst gelezen met OCR uit een scan")
    return "; ".join(parts)


# --------------------------------------------------------------------------- cleaning

# Non-speech marks transcribers and caption tools put in the text; they carry no finding
# (docs/annotation-guidelines.md, rule 18). Bracketed text that is not one of these
# (an anonymised "[naam zorginstelling]", "(GGD)") is kept.
_NON_SPEECH = (
    r"inaudible|onverstaanbaar|onhoorbaar|onduidelijk|unclear|lacht|lachen|gelach|laughs?|laughter|"
    r"stilte|silence|pauze|pause|crosstalk|door elkaar|overlap|hoest|kucht|zucht|muziek|music|applaus|"
    r"applause|geluid|achtergrondgeluid|noise|telefoon|knipperende verbinding|verbinding valt weg|"
    r"\d{1,2}:\d{2}(?::\d{2})?"
)
ARTEFACT = re.compile(rf"\s*[\[(]\s*(?:{_NON_SPEECH})\b[^\])\n]{{0,40}}[\])]", re.I)
# Hesitation fillers of verbatim transcripts ("eh", "ehm", "uhm", "hmm"): not words of the finding.
FILLER = re.compile(r"^(?:e+h+m*|e+u+h+|u+h+m*|u+m+|h+m+|m+h+m+)$", re.I)
SPEAKER_IN_TEXT = re.compile(r"^(?P<name>[^\W\d_][\w.'’&-]*(?:[ ,]+[\w.'’&()-]+){0,4}?)\s*:\s+(?=\S)")


def clean_cue_text(text: str) -> str:
    """Cue text as the researcher reads it: one line, no artefacts, no hesitation fillers."""
    text = clean_text(text).replace("\n", " ")
    text = ARTEFACT.sub("", text)
    tokens: list[str] = []
    for token in text.split():
        core = token.strip(",.;:!?…-–")
        if core and FILLER.match(core):
            tail = token[len(token.rstrip(".!?…")) :]
            if tail and tokens and not tokens[-1].endswith((".", "!", "?", "…")):
                tokens[-1] = tokens[-1].rstrip(",;:") + tail
            continue
        tokens.append(token)
    text = " ".join(tokens)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    return text.strip(" ,;:")


def _strip_overlap(previous: str, text: str) -> str:
    """Drop the words an auto-caption repeats from the previous cue (rolling captions)."""
    prev_words, words = previous.split(), text.split()
    for size in range(min(len(prev_words), len(words)), 0, -1):
        if [w.lower() for w in prev_words[-size:]] == [w.lower() for w in words[:size]]:
            if size >= 3 or size == len(words):
                return " ".join(words[size:])
            break
    return text


def _speaker_from_text(text: str, known: set[str]) -> tuple[str | None, str]:
    match = SPEAKER_IN_TEXT.match(text)
    if not match:
        return None, text
    name = match.group("name").strip(" ,")
    if len(name.split()) > 5 or (known and name not in known and name.lower() in _NOT_NAMES):
        return None, text
    return name, text[match.end() :]


_NOT_NAMES = {"dus", "nou", "kortom", "let op", "vraag", "antwoord", "ja", "nee", "oké", "ok", "maar", "want"}


# --------------------------------------------------------------------------- turns


def cues_to_blocks(cues: list[Cue]) -> list[Block]:
    """Validate the cues' times, clean their text and merge runs of one speaker into turns."""
    previous: Cue | None = None
    for cue in cues:
        if cue.end is not None and cue.end < cue.start:
            raise TranscriptError(
                f"{cue.label} ends before it starts ({format_timestamp(cue.start)} --> {format_timestamp(cue.end)})"
            )
        if previous is not None:
            if cue.start < previous.start:
                raise TranscriptError(
                    f"{cue.label} starts at {format_timestamp(cue.start)}, before {previous.label} "
                    f"({format_timestamp(previous.start)}): timestamps run backwards"
                )
            if previous.end is not None and cue.start < previous.end - OVERLAP_TOLERANCE_S:
                rolling = _strip_overlap(previous.text, cue.text) != cue.text or cue.text == previous.text
                if not rolling:
                    raise TranscriptError(
                        f"{cue.label} starts at {format_timestamp(cue.start)}, before {previous.label} ends "
                        f"({format_timestamp(previous.end)}): overlapping timestamps"
                    )
        if not clean_text(cue.text).strip():
            raise TranscriptError(f"{cue.label} at {format_timestamp(cue.start)} is empty")
        previous = cue

    runs: list[dict] = []
    last_raw = ""
    for cue in cues:
        raw = clean_text(cue.text).replace("\n", " ").strip()
        if raw == last_raw:
            continue  # a caption tool repeating the whole previous cue
        deduplicated = _strip_overlap(last_raw, raw) if last_raw else raw
        last_raw = raw
        text = clean_cue_text(deduplicated)
        if not text:
            continue  # only "[inaudible]", "(lacht)" or fillers: nothing was said that can be coded
        current = runs[-1] if runs else None
        same_speaker = current is not None and current["speaker"] == cue.speaker
        if same_speaker and cue.speaker is None and current is not None:
            end = current["end"] if current["end"] is not None else current["start"]
            same_speaker = cue.start - end < PARAGRAPH_GAP_S
        if current is not None and same_speaker:
            current["texts"].append(text)
            current["end"] = cue.end if cue.end is not None else current["end"]
        else:
            runs.append({"speaker": cue.speaker, "start": cue.start, "end": cue.end, "texts": [text]})
    blocks: list[Block] = []
    for i, run in enumerate(runs):
        end = run["end"]
        if end is None:  # TXT/DOCX formats give start times only: a turn ends where the next starts
            end = runs[i + 1]["start"] if i + 1 < len(runs) else None
        body = " ".join(run["texts"])
        if run["speaker"]:
            blocks.append(
                Block(
                    "turn",
                    f"{run['speaker']}: {body}",
                    1,
                    1,
                    speaker=run["speaker"],
                    time_start=run["start"],
                    time_end=end,
                )
            )
        else:
            blocks.append(Block("paragraph", body, 1, 1, time_start=run["start"], time_end=end))
    if not blocks:
        raise TranscriptError("transcript has no spoken text")
    return blocks


# --------------------------------------------------------------------------- WebVTT / SRT


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise TranscriptError("not a text file (binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TranscriptError("not a UTF-8 text file (binary data?)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_vtt(data: bytes) -> list[Block]:
    """WebVTT (Teams, Zoom, YouTube): voice tags or ``Naam:`` give the speaker."""
    import webvtt
    from webvtt.errors import MalformedFileError

    text = _decode(data)
    if not re.match(r"^WEBVTT(?:[ \t].*)?$", text.split("\n", 1)[0]):
        raise TranscriptError("not a WebVTT file (first line must be WEBVTT)")
    try:
        captions = list(webvtt.from_string(text))
    except MalformedFileError as exc:
        raise TranscriptError(f"malformed WebVTT ({str(exc).strip().splitlines()[0][:120]})") from None
    if not captions:
        raise TranscriptError("WebVTT file has no cues")
    voiced = {c.voice.strip() for c in captions if c.voice}
    named = _names_in_text([c.text for c in captions if not c.voice])
    cues = []
    for n, caption in enumerate(captions, start=1):
        label = f"cue {caption.identifier}" if caption.identifier else f"cue {n}"
        speaker = caption.voice.strip() if caption.voice else None
        body = caption.text
        if speaker is None:
            speaker, body = _speaker_from_text(body, named | voiced)
            if speaker is not None and speaker not in named | voiced:
                speaker, body = None, caption.text
        cues.append(Cue(parse_timestamp(caption.start), parse_timestamp(caption.end), speaker, body, label))
    return cues_to_blocks(cues)


def read_srt(data: bytes) -> list[Block]:
    """SRT: speakers as ``Naam:`` at the start of the cue text, or none at all."""
    import srt

    text = _decode(data)
    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as exc:
        raise TranscriptError(f"malformed SRT ({str(exc).strip().splitlines()[0][:120]})") from None
    if not subtitles:
        raise TranscriptError("SRT file has no cues")
    named = _names_in_text([s.content for s in subtitles])
    cues = []
    for subtitle in subtitles:
        speaker, body = _speaker_from_text(subtitle.content, named)
        if speaker is not None and speaker not in named:
            speaker, body = None, subtitle.content
        cues.append(
            Cue(subtitle.start.total_seconds(), subtitle.end.total_seconds(), speaker, body, f"cue {subtitle.index}")
        )
    return cues_to_blocks(cues)


def _names_in_text(texts: list[str]) -> set[str]:
    """Labels that open at least two cues (a name), so one "Nou: …" is not taken for a speaker."""
    counts: dict[str, int] = {}
    for text in texts:
        name, _ = _speaker_from_text(text, set())
        if name:
            counts[name] = counts.get(name, 0) + 1
    return {name for name, n in counts.items() if n >= 2 and name.lower() not in _NOT_NAMES}


# --------------------------------------------------------------------------- timestamped TXT / DOCX

_NAME = r"[^\W\d_][\w.'’&-]*(?:[ ,]+[\w.'’&-]+){0,4}?"
# [00:01:23] Spreker 1: tekst   |   [00:00:01.000 --> 00:00:04.000] Naam: tekst   |   [00:01:23] tekst
STAMP_FIRST = re.compile(
    rf"^[\[(]?(?P<start>{_TS})(?:\s*(?:-->|–|-)\s*(?P<end>{_TS}))?[\])]?\s+(?:(?P<name>{_NAME})\s*:\s+)?(?P<text>\S.*)$"
)
# Spreker 1 (00:01:23): tekst   |   Spreker 1 [00:01:23]: tekst   |   Spreker 1 (00:01:23) - tekst
NAME_FIRST = re.compile(rf"^(?P<name>{_NAME})\s*[\[(](?P<start>{_TS})[\])]\s*(?::|-|–)?\s*(?P<text>\S.*)?$")
# 00:01:23 Naam   (a line of its own; the text follows on the next lines)   |   Naam 00:01:23
STAMP_NAME_LINE = re.compile(rf"^[\[(]?(?P<start>{_TS})[\])]?\s+(?P<name>{_NAME})$")
NAME_STAMP_LINE = re.compile(rf"^(?P<name>{_NAME})\s+[\[(]?(?P<start>{_TS})[\])]?$")


def _timestamped_cues(lines: list[str]) -> tuple[list[str], list[Cue]]:
    """Split lines into a preamble (title, metadata before the first stamp) and cues."""
    preamble: list[str] = []
    cues: list[Cue] = []
    pending: dict | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            cues.append(
                Cue(pending["start"], pending["end"], pending["speaker"], " ".join(pending["text"]), pending["label"])
            )
        pending = None

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        label = f"line {number}"
        heading = STAMP_NAME_LINE.match(line) or NAME_STAMP_LINE.match(line)
        if heading and len(heading.group("name").split()) <= 4:
            flush()
            pending = {
                "start": parse_timestamp(heading.group("start")),
                "end": None,
                "speaker": heading.group("name").strip(" ,"),
                "text": [],
                "label": label,
            }
            continue
        match = STAMP_FIRST.match(line) or NAME_FIRST.match(line)
        if match:
            flush()
            groups = match.groupdict()
            end = groups.get("end")
            pending = {
                "start": parse_timestamp(groups["start"]),
                "end": parse_timestamp(end) if end else None,
                "speaker": (groups.get("name") or "").strip(" ,") or None,
                "text": [groups["text"]] if groups.get("text") else [],
                "label": label,
            }
            continue
        if pending is not None:
            pending["text"].append(line)
        elif not cues:
            preamble.append(line)
    flush()
    return preamble, cues


def _transcript_blocks(preamble: list[str], cues: list[Cue]) -> list[Block]:
    blocks = [Block("heading", clean_text(preamble[0]), 1, 1, heading_level=1)] if preamble else []
    blocks += [Block("paragraph", clean_text(line), 1, 1) for line in preamble[1:]]
    return blocks + cues_to_blocks(cues)


def timestamped_text_blocks(text: str) -> list[Block] | None:
    """Blocks of a timestamped TXT transcript, or None when the text is not one."""
    preamble, cues = _timestamped_cues(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    if len(cues) < MIN_TIMESTAMPED_TURNS:
        return None
    return _transcript_blocks(preamble, cues)


_TIME_HEADERS = {"tijd", "time", "tijdstip", "tijdstempel", "timestamp", "start", "begin", "tijdcode"}
_SPEAKER_HEADERS = {"spreker", "speaker", "naam", "name", "wie", "deelnemer", "persoon"}
_TEXT_HEADERS = {"tekst", "text", "transcript", "transcriptie", "uitspraak", "wat", "inhoud", "gezegd"}


def docx_transcript_blocks(path: Path) -> list[Block] | None:
    """Blocks of a timestamped Word transcript (stamped paragraphs or a time/speaker/text
    table), or None when the document is not one (it is then read as an ordinary DOCX)."""
    import docx

    try:
        document = docx.Document(str(path))
    except Exception:  # the ordinary DOCX reader reports why
        return None
    lines = [p.text for p in document.paragraphs]
    preamble, cues = _timestamped_cues(lines)
    if len(cues) >= MIN_TIMESTAMPED_TURNS:
        return _transcript_blocks(preamble, cues)
    for table in document.tables:
        rows = [[cell.text.strip() for cell in row.cells] for row in table.rows]
        table_cues = _table_cues(rows)
        if table_cues is not None and len(table_cues) >= MIN_TIMESTAMPED_TURNS:
            title = [line.strip() for line in lines if line.strip()][:1]
            return _transcript_blocks(title, table_cues)
    return None


def _table_cues(rows: list[list[str]]) -> list[Cue] | None:
    """Cues from a table whose columns are time, speaker and text (header row optional)."""
    if len(rows) < 2 or min(len(r) for r in rows) < 2:
        return None
    header = [c.lower().strip(" :") for c in rows[0]]
    body = rows[1:] if not any(TIMESTAMP.match(c) for c in rows[0]) else rows
    width = min(len(r) for r in body)

    def share_stamped(col: int) -> float:
        return sum(bool(TIMESTAMP.match(r[col])) for r in body) / len(body)

    time_col = next((i for i, h in enumerate(header[:width]) if h in _TIME_HEADERS), None)
    if time_col is None:
        time_col = max(range(width), key=share_stamped)
    if share_stamped(time_col) < 0.8:
        return None
    others = [i for i in range(width) if i != time_col]
    text_col = next((i for i in others if header[i] in _TEXT_HEADERS), None)
    if text_col is None:
        text_col = max(others, key=lambda i: sum(len(r[i]) for r in body))
    speaker_col = next((i for i in others if i != text_col and header[i] in _SPEAKER_HEADERS), None)
    if speaker_col is None:
        rest = [i for i in others if i != text_col]
        speaker_col = min(rest, key=lambda i: sum(len(r[i]) for r in body)) if rest else None
    cues = []
    for n, row in enumerate(body, start=1):
        if not TIMESTAMP.match(row[time_col]):
            continue
        speaker = row[speaker_col].strip(" :") if speaker_col is not None and row[speaker_col].strip() else None
        cues.append(Cue(parse_timestamp(row[time_col]), None, speaker, row[text_col], f"table row {n}"))
    return cues


def read_transcript(path: Path, data: bytes) -> list[Block]:
    """Blocks of a ``.vtt`` or ``.srt`` file (raises :class:`TranscriptError`)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".vtt":
        return read_vtt(data)
    if suffix == ".srt":
        return read_srt(data)
    raise TranscriptError(f"not a subtitle transcript ({suffix})")


__all__ = [
    "Cue",
    "TranscriptError",
    "clean_cue_text",
    "cues_to_blocks",
    "docx_transcript_blocks",
    "format_timestamp",
    "origin_note",
    "parse_timestamp",
    "read_srt",
    "read_transcript",
    "read_vtt",
    "timestamped_text_blocks",
]
