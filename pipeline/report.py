"""Writing the matrices and the comparison: CSV, Parquet, XLSX, PNG and one self-contained HTML report.

Everything researchers read is in Dutch; every file is written to a temporary
name and renamed, so a reader never opens half a table.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from jinja2 import Environment, select_autoescape
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill

from pipeline.codebook import Codebook
from pipeline.corpus import write_atomic, write_json
from pipeline.estimate import audit_size_for
from pipeline.figures import plt
from pipeline.figures import png as _png
from pipeline.matrices import (
    SIGNS,
    CodedPassage,
    all_human,
    compact_matrix,
    condition_matrix,
    coverage,
    document_method,
    matrix_rows,
    residual_table,
    sector_cell_estimates,
    sector_condition_polarity,
    sector_differences,
    sector_tests,
)
from pipeline.reproducible import xlsx_bytes

RED, GREEN, GREY = "F4B6B6", "B9E3B9", "EEEEEE"
# The interval half-width a document without an audit sample is told how to reach.
AUDIT_HALF_WIDTH = 0.10
TYPE_NAMES = {"te_sterk": "te sterk netwerk", "te_zwak": "te zwak netwerk", "goed": "goed netwerk"}


def row_label(codebook: Codebook, condition: str, itype: str | None) -> str:
    name = codebook.fields["conditions"].label(condition).name
    return f"{name} – {TYPE_NAMES.get(itype, itype)}" if itype else name


def condition_name(codebook: Codebook, condition: str) -> str:
    if condition in codebook.ids("conditions"):
        return codebook.fields["conditions"].label(condition).name
    return condition


def stakeholder_name(codebook: Codebook, stakeholder: str) -> str:
    return codebook.fields["stakeholders"].label(stakeholder).name if stakeholder else "Geen stakeholder"


# --------------------------------------------------------------------------- per document


def heatmap_png(long: pd.DataFrame, codebook: Codebook, title: str) -> bytes:
    """Tabel-1 heatmap: good practices minus barriers per cell, counts written in."""
    rows = matrix_rows(codebook)
    stakeholders = [*codebook.ids("stakeholders"), ""]
    values = [[0] * len(stakeholders) for _ in rows]
    texts = [[""] * len(stakeholders) for _ in rows]
    for i, (condition, itype) in enumerate(rows):
        for j, stakeholder in enumerate(stakeholders):
            cell = long[
                (long.condition == condition)
                & (long.interactie_type == (itype or ""))
                & (long.stakeholder == stakeholder)
            ]
            minus = int(cell[cell.polarity == "belemmerend"].n.sum())
            plus = int(cell[cell.polarity == "bevorderend"].n.sum())
            values[i][j] = plus - minus
            texts[i][j] = f"−{minus} / +{plus}" if minus or plus else ""
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    limit = max(1, max(abs(v) for row in values for v in row))
    ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(len(stakeholders)), [stakeholder_name(codebook, s) for s in stakeholders], rotation=20, ha="right"
    )
    ax.set_yticks(range(len(rows)), [row_label(codebook, c, t) for c, t in rows])
    for i in range(len(rows)):
        for j in range(len(stakeholders)):
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def pct(x: float | None, digits: int = 0) -> str:
    """A share as a Dutch percentage: 0.125 -> '13 %' (digits=0), '12,5 %' (digits=1)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}".replace(".", ",") + " %"


def interval_text(low: float | None, high: float | None) -> str:
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return ""
    return f"{pct(low)} – {pct(high)}"


def method_text(method: str, n_audit: int, content: int) -> str:
    """How a document's figures were obtained, in one paragraph a steering group can read."""
    if method == "human":
        return (
            f"Alle {content} inhoudelijke passages zijn door analisten gecodeerd: de aandelen zijn exact "
            "en bevatten geen modelfouten."
        )
    if method == "ppi":
        return (
            f"Geschat met het model en een aselecte steekproef van {n_audit} van de {content} passages die "
            "analisten zelf codeerden (prediction-powered inference, PPI++): de steekproef meet hoe vaak en in "
            "welke richting het model zich vergist en corrigeert de telling daarvoor. Elk aandeel heeft een "
            "95 %-betrouwbaarheidsinterval."
        )
    need = audit_size_for(AUDIT_HALF_WIDTH, content)
    return (
        "Let op: voor dit document is geen aselecte steekproef gecodeerd. De cijfers zijn tellingen van de "
        "labels van het model (met de beslissingen van analisten waar die er zijn) en kunnen vertekend zijn, "
        "ook in de richting van een verschil tussen studies. Voor aandelen met een interval van hooguit "
        f"±{100 * AUDIT_HALF_WIDTH:.0f} procentpunt: laat analisten een aselecte steekproef van {need} passages "
        f"coderen (mgz audit draw --per-document {need})."
    )


def coverage_line(cov: dict) -> str:
    return (
        f"Inhoudelijke passages: {cov['content_passages']} · beoordeeld: {cov['reviewed']} · "
        f"alleen model: {cov['model_only']} · niet geclassificeerd: {cov['unclassified']}"
    )


def write_xlsx(
    path: Path,
    matrices: dict[str, pd.DataFrame],
    by_id: dict[str, CodedPassage],
    codebook: Codebook,
    titles: dict[str, str],
    coverage_by_doc: dict[str, dict],
    compacts: dict[str, pd.DataFrame] | None = None,
) -> None:
    """One sheet per document laid out like Tabel 1: − and + columns per stakeholder group,
    red and green fills, an example passage per cell as a comment; below it how the figures
    were obtained and, per condition and direction, the estimated share with its interval."""
    book = Workbook()
    book.remove(book.active)
    stakeholders = [*codebook.ids("stakeholders"), ""]
    for doc_id, long in matrices.items():
        sheet = book.create_sheet(title=doc_id[:31])
        sheet["A1"] = titles.get(doc_id, doc_id)
        sheet["A1"].font = Font(bold=True)
        sheet["D1"] = coverage_line(coverage_by_doc[doc_id])
        sheet["A2"] = "Systeemvoorwaarden"
        sheet["A2"].font = Font(bold=True)
        for j, stakeholder in enumerate(stakeholders):
            column = 2 + 2 * j
            sheet.cell(row=2, column=column, value=stakeholder_name(codebook, stakeholder)).font = Font(bold=True)
            sheet.merge_cells(start_row=2, start_column=column, end_row=2, end_column=column + 1)
            sheet.cell(row=3, column=column, value="− belemmerend")
            sheet.cell(row=3, column=column + 1, value="+ bevorderend")
        for i, (condition, itype) in enumerate(matrix_rows(codebook)):
            row = 4 + i
            sheet.cell(row=row, column=1, value=row_label(codebook, condition, itype))
            for j, stakeholder in enumerate(stakeholders):
                for k, polarity in enumerate(SIGNS):
                    cell_rows = long[
                        (long.condition == condition)
                        & (long.interactie_type == (itype or ""))
                        & (long.stakeholder == stakeholder)
                        & (long.polarity == polarity)
                    ]
                    record = cell_rows.iloc[0]
                    cell = sheet.cell(row=row, column=2 + 2 * j + k, value=int(record.n))
                    cell.alignment = Alignment(horizontal="center")
                    if record.n:
                        cell.fill = PatternFill("solid", fgColor=RED if polarity == "belemmerend" else GREEN)
                        example = by_id[record.passage_ids.split()[0]]
                        note = f"{example.text[:300]} (p. {example.page}, {example.source})"
                        if record.low_confidence:
                            note += " — lage modelzekerheid"
                        cell.comment = Comment(note, "mgz")
        if compacts is not None and doc_id in compacts:
            _xlsx_estimates(sheet, 5 + len(matrix_rows(codebook)), compacts[doc_id], codebook, coverage_by_doc[doc_id])
        sheet.column_dimensions["A"].width = 42
    write_atomic(path, xlsx_bytes(book))  # fixed document times and zip dates: same input, same bytes


def _xlsx_estimates(sheet, row: int, compact: pd.DataFrame, codebook: Codebook, cov: dict) -> None:
    """The condition × direction shares: plain count share, estimate and 95 % interval."""
    method = str(compact.method.iloc[0]) if len(compact) else "model"
    n_audit = int(compact.n_audit.max()) if len(compact) else 0
    sheet.cell(row=row, column=1, value="Aandelen per voorwaarde en richting").font = Font(bold=True)
    sheet.cell(row=row + 1, column=1, value=method_text(method, n_audit, cov["content_passages"]))
    headers = ["Voorwaarde", "Richting", "Telling (aandeel)", "Schatting", "95 %-interval", "Methode"]
    for j, header in enumerate(headers, start=1):
        sheet.cell(row=row + 2, column=j, value=header).font = Font(bold=True)
    polarity_names = {lab: codebook.fields["polarity"].label(lab).name for lab in codebook.ids("polarity")}
    for i, r in enumerate(_findings(compact).itertuples(), start=row + 3):
        name = condition_name(codebook, r.condition)
        values = [name, polarity_names[r.polarity], f"{r.n} ({pct(r.share)})", pct(r.estimate),
                  interval_text(_none(r.ci_low), _none(r.ci_high)), METHOD_NAMES[r.method]]  # fmt: skip
        for j, value in enumerate(values, start=1):
            sheet.cell(row=i, column=j, value=value)


def _findings(compact: pd.DataFrame) -> pd.DataFrame:
    """Barrier and good-practice rows of a compact matrix; passages without a condition are no
    finding by the coding rules, so their barrier/good-practice cells are structurally empty."""
    return compact[compact.polarity.isin(list(SIGNS)) & (compact.condition != "geen voorwaarde")]


def _none(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


METHOD_NAMES = {"ppi": "model + steekproef (PPI++)", "human": "volledig door analisten", "model": "alleen model"}


def write_matrices(
    passages: Sequence[CodedPassage],
    codebook: Codebook,
    out_dir: Path,
    titles: dict[str, str] | None = None,
    threshold: float = 0.6,
) -> dict:
    """Per document CSV and PNG; all documents as Parquet and XLSX. Returns coverage per document."""
    titles = titles or {}
    out_dir = Path(out_dir)
    by_doc: dict[str, list[CodedPassage]] = {}
    for p in passages:
        by_doc.setdefault(p.doc_id, []).append(p)
    matrices, compacts, summary, heatmaps, compact_by_doc = {}, [], {}, {}, {}
    if out_dir.exists():  # documents retired or failed since the last run leave the outputs
        for stale in [*out_dir.glob("*.csv"), *out_dir.glob("*.png")]:
            if stale.stem not in by_doc and stale.name != "compact.csv":
                stale.unlink()
    for doc_id, doc_passages in sorted(by_doc.items()):
        long = condition_matrix(doc_passages, codebook, threshold)
        matrices[doc_id] = long
        compact_by_doc[doc_id] = compact_matrix(doc_passages, codebook)
        compacts.append(compact_by_doc[doc_id])
        write_atomic(
            out_dir / f"{doc_id}.csv", long.drop(columns=["n_model_only", "low_confidence"]).to_csv(index=False)
        )
        heatmaps[doc_id] = heatmap_png(long, codebook, titles.get(doc_id, doc_id))
        write_atomic(out_dir / f"{doc_id}.png", heatmaps[doc_id])
        summary[doc_id] = {**coverage(doc_passages), **_method(doc_passages)}
    if matrices:
        everything = pd.concat(matrices.values(), ignore_index=True)
        buffer = io.BytesIO()
        everything.to_parquet(buffer, index=False)
        write_atomic(out_dir / "matrices.parquet", buffer.getvalue())
        write_atomic(out_dir / "compact.csv", pd.concat(compacts, ignore_index=True).to_csv(index=False))
        write_xlsx(
            out_dir / "matrices.xlsx",
            matrices,
            {p.passage_id: p for p in passages},
            codebook,
            titles,
            summary,
            compact_by_doc,
        )
    write_json(out_dir / "coverage.json", summary)
    return {"coverage": summary, "matrices": matrices, "heatmaps": heatmaps, "compacts": compact_by_doc}


def _method(passages: Sequence[CodedPassage]) -> dict:
    """How the document's estimates are made and on how many audit-sample passages."""
    content = [p for p in passages if p.is_content]
    return {
        "method": document_method(content),
        "audit_sample": sum(p.audit for p in content),
        "audit_coded": sum(p.audit and p.source == "review" for p in content),
    }


# --------------------------------------------------------------------------- across sectors


def balance_png(table: pd.DataFrame, codebook: Codebook) -> bytes:
    """Diverging bars: good practices right, barriers left, per 100 content passages, per sector."""
    sectors = sorted(table.sector.unique())
    conditions = list(codebook.ids("conditions"))
    fig, axes = plt.subplots(1, len(sectors), figsize=(4 * len(sectors), 3.5), sharey=True, squeeze=False)
    for ax, sector in zip(axes[0], sectors, strict=True):
        part = table[table.sector == sector]
        plus = [float(part[(part.condition == c) & (part.polarity == "bevorderend")].per_100.sum()) for c in conditions]
        minus = [
            -float(part[(part.condition == c) & (part.polarity == "belemmerend")].per_100.sum()) for c in conditions
        ]
        ax.barh(conditions, plus, color="#2ca02c", label="bevorderend (+)")
        ax.barh(conditions, minus, color="#d62728", label="belemmerend (−)")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(sector)
        ax.set_xlabel("per 100 inhoudelijke passages")
    axes[0][0].set_yticks(range(len(conditions)), [codebook.fields["conditions"].label(c).name for c in conditions])
    axes[0][-1].legend(loc="lower right", fontsize=8)
    return _png(fig)


NOT_ALL_HUMAN = (
    "niet getoetst: niet elke passage is door analisten gecodeerd, en een chi-kwadraattoets op modellabels "
    "behandelt de fouten van het model als gegevens; zie de verschillen tussen sectoren met hun intervallen"
)


def write_comparison(passages: Sequence[CodedPassage], codebook: Codebook, out_dir: Path, n_boot: int = 1000) -> dict:
    """Per sector the shares (counts, bootstrap and estimates), the differences between sectors
    with their intervals, and the chi-square tests where (only where) every passage is human-coded."""
    out_dir = Path(out_dir)
    table = sector_condition_polarity(passages, codebook, n_boot=n_boot)
    write_atomic(out_dir / "sector_condition_polarity.csv", table.to_csv(index=False))
    differences = sector_differences(sector_cell_estimates(passages, codebook))
    write_atomic(out_dir / "sector_differences.csv", differences.to_csv(index=False))
    if all_human(passages):
        tests = sector_tests(passages, codebook)
    else:
        untested = {"testable": False, "warning": NOT_ALL_HUMAN}
        tests = {
            "sector_x_condition": untested,
            "polarity_within_condition": dict.fromkeys(codebook.ids("conditions"), untested),
        }
    write_json(out_dir / "chi_square.json", tests)
    write_atomic(
        out_dir / "sector_condition_residuals.csv", residual_table(tests["sector_x_condition"]).to_csv(index=False)
    )
    figure = balance_png(table, codebook) if len(table) else b""
    if figure:
        write_atomic(out_dir / "balance.png", figure)
    return {"table": table, "tests": tests, "balance_png": figure, "differences": differences}


# --------------------------------------------------------------------------- HTML report

TEMPLATE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>MGZ-analyse: systeemvoorwaarden per studie</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f3f3f3}.neg{background:#{{red}}}.pos{background:#{{green}}}.low{outline:2px dashed #555}
.caption{color:#555;font-size:13px;max-width:900px}.warn{color:#a40}img{max-width:100%}
details{margin:0.3rem 0}
</style></head><body>
<h1>Systeemvoorwaarden voor medisch-generalistische zorg</h1>
<p class="caption">Gegenereerd door mgz. Passages zijn gecodeerd volgens het systeem framework (Klein Woolthuis e.a.).
Labels komen van de beoordeling door een analist waar die er is, anders van het model
({{ model_version or "geen model" }}). Cellen met een stippellijn rusten alleen op het model, met een gemiddelde
modelzekerheid onder {{ threshold }}.</p>

<h2>Waar rusten deze cijfers op?</h2>
{% if basis.any_model %}<p class="warn"><strong>Indicatief.</strong> Voor {{ basis.n_model_docs }} van de
{{ basis.n_docs }} documenten is geen aselecte steekproef door analisten gecodeerd: hun cijfers zijn tellingen van
modellabels en kunnen vertekend zijn. Het model haalde bij een studie die het niet kende een gemiddelde
overeenstemming met de referentiecodering van {{ basis.quality }}.</p>{% endif %}
<p class="caption">Van de {{ basis.content }} inhoudelijke passages zijn er {{ basis.reviewed }}
({{ basis.reviewed_pct }}) door analisten beoordeeld; {{ basis.audit_coded }} daarvan horen bij de aselecte
steekproef die de schattingen corrigeert. De overige {{ basis.model_only }} ({{ basis.model_pct }}) hebben alleen
labels van het model.</p>
<table><tr><th>Document</th><th>Inhoudelijke passages</th><th>Beoordeeld</th><th>Steekproef (gecodeerd / getrokken)</th>
<th>Methode</th></tr>
{% for d in documents %}<tr><td>{{ d.title }}</td><td>{{ d.coverage.content_passages }}</td>
<td>{{ d.coverage.reviewed }}</td><td>{{ d.coverage.audit_coded }} / {{ d.coverage.audit_sample }}</td>
<td>{{ d.method_name }}</td></tr>{% endfor %}
</table>

<h2>Corpus</h2>
<table><tr><th>Document</th><th>Sector</th><th>Pagina's</th><th>Passages</th><th>Inhoudelijke passages</th>
<th>Beoordeeld</th><th>Alleen model</th><th>Niet geclassificeerd</th></tr>
{% for d in documents %}<tr><td>{{ d.title }}{% if d.ocr_passages %}
<small>(scan: {{ d.ocr_passages }} passages met OCR gelezen)</small>{% endif %}</td>
<td>{{ d.sector }}</td><td>{{ d.pages }}</td>
<td>{{ d.coverage.passages }}</td><td>{{ d.coverage.content_passages }}</td><td>{{ d.coverage.reviewed }}</td>
<td>{{ d.coverage.model_only }}</td><td>{{ d.coverage.unclassified }}</td></tr>{% endfor %}
</table>

<h2>Matrices per document</h2>
<p class="caption">Per systeemvoorwaarde en stakeholdergroep het aantal passages met een belemmerende (−, rood)
en een bevorderende (+, groen) bevinding, zoals Tabel 1 in de VG-verkenning.</p>
{% for d in documents %}
<h3>{{ d.title }}</h3>
<p class="caption">{{ d.coverage_line }}</p>
<p class="{{ 'warn' if d.method == 'model' else 'caption' }}">{{ d.method_text }}</p>
<table><tr><th>Voorwaarde</th><th>Richting</th><th>Telling (aandeel)</th><th>Schatting</th><th>95 %-interval</th></tr>
{% for e in d.estimates %}<tr><td>{{ e.condition }}</td><td>{{ e.polarity }}</td><td>{{ e.share }}</td>
<td>{{ e.estimate }}</td><td>{{ e.interval }}</td></tr>{% endfor %}</table>
<table><tr><th>Systeemvoorwaarde</th>{% for s in stakeholders %}<th colspan="2">{{ s }}</th>{% endfor %}</tr>
{% for row in d.rows %}<tr><td>{{ row.label }}</td>{% for cell in row.cells %}
<td class="{{ cell.css }}" title="{{ cell.title }}">{{ cell.text }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% for ex in d.examples %}<details><summary>{{ ex.cell }}</summary><ul>{% for p in ex.passages %}
<li>{{ p.text }} <a href="{{ p.link }}">p. {{ p.page }}</a> <em>({{ p.source }})</em></li>{% endfor %}</ul>
</details>{% endfor %}
{% endfor %}

<h2>Vergelijking tussen sectoren</h2>
<p class="caption">Per sector het aandeel inhoudelijke passages met een voorwaarde en richting. De telling per 100
passages volgt de labels (van analisten waar beoordeeld, anders van het model). De schatting combineert de documenten
van een sector naar hun aantal passages; waar een steekproef is gecodeerd, is ze voor de fouten van het model
gecorrigeerd en heeft ze een 95 %-betrouwbaarheidsinterval. Zonder steekproef staat er geen interval: een
bootstrap over modellabels zou zekerheid suggereren over de vertekening van het model.</p>
<img alt="Balans belemmerend/bevorderend per voorwaarde en sector" src="data:image/png;base64,{{ balance }}">
<table><tr><th>Sector</th><th>Voorwaarde</th><th>Richting</th><th>n</th><th>per 100 (telling)</th><th>Schatting</th>
<th>95 %-interval</th><th>Methode</th></tr>
{% for r in comparison %}<tr><td>{{ r.sector }}</td><td>{{ r.condition }}</td><td>{{ r.polarity }}</td>
<td>{{ r.n }}</td><td>{{ r.per_100 }}</td><td>{{ r.estimate }}</td><td>{{ r.interval }}</td>
<td>{{ r.method }}</td></tr>{% endfor %}</table>

<h3>Verschillen tussen sectoren</h3>
{% if differences %}<p class="caption">Verschil in aandeel (sector A min sector B) met een 95 %-interval; vet waar
het interval nul uitsluit. Bij "alleen model" is er geen interval: het verschil tussen twee modeltellingen bevat
de vertekening van het model aan beide kanten.</p>
<table><tr><th>Sector A</th><th>Sector B</th><th>Voorwaarde</th><th>Richting</th><th>Verschil</th><th>95 %-interval</th>
<th>Methode</th></tr>
{% for r in differences %}<tr><td>{{ r.sector_a }}</td><td>{{ r.sector_b }}</td><td>{{ r.condition }}</td>
<td>{{ r.polarity }}</td>
<td>{% if r.clear %}<strong>{{ r.difference }}</strong>{% else %}{{ r.difference }}{% endif %}</td>
<td>{{ r.interval }}</td><td>{{ r.method }}</td></tr>{% endfor %}</table>
{% else %}<p class="caption">Er is maar één sector: geen verschillen te tonen.</p>{% endif %}

<h3>Hangen sector en voorwaarde samen?</h3>
{% if test.testable %}
<p class="caption">Chi-kwadraat = {{ test.chi2 }} (df = {{ test.dof }}), p = {{ "%.4f"|format(test.p_value) }}.
Een passage kan meerdere voorwaarden hebben; lees de p-waarde daarom als richtlijn en de gestandaardiseerde
residuen als de bevinding: |r| &gt; 2 betekent dat die cel duidelijk meer (+) of minder (−) voorkomt dan bij
onafhankelijkheid te verwachten is.</p>
{% if test.warning %}<p class="warn">Let op: {{ test.warning }}.</p>{% endif %}
<table><tr><th>Sector</th>{% for c in test.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for i in range(test.rows|length) %}<tr><td>{{ test.rows[i] }}</td>{% for j in range(test.columns|length) %}
<td>{{ test.observed[i][j] }} (r = {{ test.residuals[i][j] }})</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="warn">{{ test.warning }}</p>{% endif %}

<h3>Verschilt de richting (belemmerend/bevorderend/neutraal) per sector, binnen elke voorwaarde?</h3>
<table><tr><th>Voorwaarde</th><th>Chi-kwadraat</th><th>df</th><th>p</th><th>Grootste residu</th><th>Opmerking</th></tr>
{% for name, t in within.items() %}<tr><td>{{ name }}</td>{% if t.testable %}<td>{{ t.chi2 }}</td><td>{{ t.dof }}</td>
<td>{{ "%.4f"|format(t.p_value) }}</td><td>{{ t.largest }}</td>{% else %}<td colspan="4"></td>{% endif %}
<td class="warn">{{ t.warning or "" }}</td></tr>{% endfor %}</table>

{% for d in documents %}<h3>Heatmap: {{ d.title }}</h3>
<img alt="Heatmap {{ d.title }}" src="data:image/png;base64,{{ d.heatmap }}">{% endfor %}

{# Inductive themes compared across sectors: rendered by pipeline/theme_report.py (issue 23). #}
{% if topics %}{{ topics.section }}{% else %}<h2>Thema's uit de documenten zelf (inductief, BERTopic)</h2>
<p class="warn">Geen thema's: het corpus is te klein voor een topicmodel,
of `mgz topics` is nog niet gedraaid.</p>
{% endif %}
</body></html>
"""


def write_html_report(
    path: Path,
    passages: Sequence[CodedPassage],
    codebook: Codebook,
    docs: list[dict],
    matrices: dict,
    coverage_by_doc: dict,
    heatmaps: dict[str, bytes],
    comparison: dict,
    model_version: str | None,
    threshold: float = 0.6,
    topics: dict | None = None,
    compacts: dict[str, pd.DataFrame] | None = None,
    card: dict | None = None,
) -> None:
    """One HTML file with everything inline (CSS, figures), opening from disk without a network.

    ``heatmaps`` are the PNGs ``write_matrices`` already rendered, so no figure is drawn twice.
    """
    by_id = {p.passage_id: p for p in passages}
    stakeholders = [*codebook.ids("stakeholders"), ""]
    documents = []
    for doc in docs:
        doc_id = doc["doc_id"]
        if doc_id not in matrices:
            continue
        long = matrices[doc_id]
        link_base = os.path.relpath(doc["source"], path.parent) if doc.get("source") else ""
        rows, examples = [], []
        for condition, itype in matrix_rows(codebook):
            label = row_label(codebook, condition, itype)
            cells = []
            for stakeholder in stakeholders:
                for polarity, sign in SIGNS.items():
                    record = long[
                        (long.condition == condition)
                        & (long.interactie_type == (itype or ""))
                        & (long.stakeholder == stakeholder)
                        & (long.polarity == polarity)
                    ].iloc[0]
                    css = ("neg" if polarity == "belemmerend" else "pos") if record.n else ""
                    css += " low" if record.low_confidence else ""
                    cells.append(
                        {
                            "text": f"{sign}{record.n}" if record.n else "",
                            "css": css,
                            "title": _cell_title(record),
                        }
                    )
                    if record.n:
                        ids = record.passage_ids.split()[:3]
                        examples.append(
                            {
                                "cell": f"{label} · {stakeholder_name(codebook, stakeholder)} · {sign}{record.n}",
                                "passages": [
                                    {
                                        "text": by_id[i].text,
                                        "page": by_id[i].page,
                                        "source": by_id[i].source,
                                        "link": f"{link_base}#page={by_id[i].page}",
                                    }
                                    for i in ids
                                ],
                            }
                        )
            rows.append({"label": label, "cells": cells})
        cov = coverage_by_doc[doc_id]
        documents.append(
            {
                "title": doc.get("title") or doc_id,
                "sector": doc.get("sector", ""),
                "pages": doc.get("pages") or "",
                "ocr_passages": doc.get("ocr_passages", 0),
                "coverage": cov,
                "coverage_line": coverage_line(cov),
                "method": cov.get("method", "model"),
                "method_name": METHOD_NAMES[cov.get("method", "model")],
                "method_text": method_text(
                    cov.get("method", "model"), cov.get("audit_coded", 0), cov["content_passages"]
                ),
                "estimates": _estimate_rows(compacts.get(doc_id) if compacts else None, codebook),
                "rows": rows,
                "examples": examples,
                "heatmap": base64.b64encode(heatmaps[doc_id]).decode(),
            }
        )
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page = env.from_string(TEMPLATE).render(
        red=RED,
        green=GREEN,
        documents=documents,
        threshold=threshold,
        model_version=model_version,
        stakeholders=[stakeholder_name(codebook, s) for s in stakeholders],
        basis=_basis(coverage_by_doc, card),
        comparison=_comparison_rows(comparison["table"], codebook),
        differences=_difference_rows(comparison.get("differences"), codebook),
        test=comparison["tests"]["sector_x_condition"],
        within={
            codebook.fields["conditions"].label(c).name: _with_largest(t)
            for c, t in comparison["tests"]["polarity_within_condition"].items()
        },
        balance=base64.b64encode(comparison["balance_png"]).decode(),
        topics=topics,
        topic_heatmap=base64.b64encode(topics["heatmap_png"]).decode() if topics else "",
    )
    write_atomic(path, page)


def _cell_title(record) -> str:
    """A Tabel-1 cell's hover text: how much rests on the model, and the estimate where there is one."""
    title = f"{record.n_model_only} alleen model"
    if record.method == "ppi":
        interval = interval_text(_none(record.ci_low), _none(record.ci_high))
        title += f"; geschat aandeel {pct(record.estimate, 1)} ({interval})"
    return title


def _estimate_rows(compact: pd.DataFrame | None, codebook: Codebook) -> list[dict]:
    if compact is None:
        return []
    polarity = codebook.fields["polarity"]
    return [
        {
            "condition": condition_name(codebook, r.condition),
            "polarity": polarity.label(r.polarity).name,
            "share": f"{r.n} ({pct(r.share)})",
            "estimate": pct(r.estimate),
            "interval": interval_text(_none(r.ci_low), _none(r.ci_high)) or "geen (alleen model)",
        }
        for r in _findings(compact).itertuples()
    ]


def _comparison_rows(table: pd.DataFrame, codebook: Codebook) -> list[dict]:
    polarity = codebook.fields["polarity"]
    return [
        {
            "sector": r.sector,
            "condition": condition_name(codebook, r.condition),
            "polarity": polarity.label(r.polarity).name,
            "n": r.n,
            "per_100": f"{r.per_100:.1f}".replace(".", ","),
            "estimate": pct(r.estimate, 1),
            "interval": interval_text(_none(r.ci_low), _none(r.ci_high)),
            "method": METHOD_NAMES[r.method],
        }
        for r in table.itertuples()
    ]


def _difference_rows(table: pd.DataFrame | None, codebook: Codebook) -> list[dict]:
    if table is None:
        return []
    polarity = codebook.fields["polarity"]
    rows = []
    for r in table.itertuples():
        low, high = _none(r.ci_low), _none(r.ci_high)
        rows.append(
            {
                "sector_a": r.sector_a,
                "sector_b": r.sector_b,
                "condition": condition_name(codebook, r.condition),
                "polarity": polarity.label(r.polarity).name,
                "difference": f"{100 * r.difference:+.1f}".replace(".", ",") + " procentpunt",
                "interval": "" if low is None else f"{100 * low:+.1f} tot {100 * high:+.1f}".replace(".", ","),
                "clear": low is not None and (low > 0 or high < 0),
                "method": METHOD_NAMES[r.method],
            }
        )
    return rows


def _basis(coverage_by_doc: dict, card: dict | None) -> dict:
    """How much of the report rests on analysts and how much on the model, for its first section."""
    content = sum(c["content_passages"] for c in coverage_by_doc.values())
    reviewed = sum(c["reviewed"] for c in coverage_by_doc.values())
    model_only = sum(c["model_only"] for c in coverage_by_doc.values())
    n_model = sum(c.get("method", "model") == "model" for c in coverage_by_doc.values())
    return {
        "content": content,
        "reviewed": reviewed,
        "reviewed_pct": pct(reviewed / content) if content else "0 %",
        "model_only": model_only,
        "model_pct": pct(model_only / content) if content else "0 %",
        "audit_coded": sum(c.get("audit_coded", 0) for c in coverage_by_doc.values()),
        "n_docs": len(coverage_by_doc),
        "n_model_docs": n_model,
        "any_model": n_model > 0,
        "quality": model_quality_text(card),
    }


def model_quality_text(card: dict | None) -> str:
    """The model's leave-one-document-out figures from its card, as a reader-facing range."""
    rows = (card or {}).get("evaluation", {}).get("lodo_headline") or []

    def span(field: str, measure: str) -> str | None:
        values = [r["model"] for r in rows if r["field"] == field and r["measure"] == measure and r["fold"] != "mean"]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return f"{min(values):.2f}–{max(values):.2f}".replace(".", ",")

    conditions, polarity = span("conditions", "micro_f1"), span("polarity", "macro_f1")
    if not conditions or not polarity:
        return "onbekend (geen evaluatie in de modelkaart)"
    return f"F1 {conditions} voor de systeemvoorwaarden en F1 {polarity} voor de richting (1 is perfect)"


def _with_largest(test: dict) -> dict:
    """Name the cell that drives a test most, in words a reader can check in the table."""
    if not test.get("testable"):
        return test
    cells = [
        (abs(r), test["rows"][i], test["columns"][j], r)
        for i, row in enumerate(test["residuals"])
        for j, r in enumerate(row)
    ]
    _, sector, column, value = max(cells)
    return {**test, "largest": f"{sector} · {column}: r = {value}"}


def build_outputs(
    engine,
    codebook: Codebook,
    out_dir: Path,
    model_version: str | None,
    report: bool = True,
    threshold: float = 0.6,
    models_dir: Path | None = None,
) -> dict:
    """Matrices (``out_dir/matrices``), comparison (``out_dir/comparison``) and, with ``report``,
    the HTML report (``out_dir/report/index.html``), all from the store.

    Written into a staging folder and swapped in whole (:mod:`pipeline.outputs`): a full
    disk or read-only folder raises ``OutputError`` with the previous outputs intact."""
    from pipeline.matrices import coded_passages
    from pipeline.outputs import staged_outputs
    from pipeline.store import document_rows

    passages = coded_passages(engine, model_version)
    docs = [d for d in document_rows(engine) if d["status"] == "ok"]
    folders = ("matrices", "comparison", "report") if report else ("matrices",)
    with staged_outputs(Path(out_dir), folders) as staging:  # all or nothing: no half-written outputs
        return _write_outputs(
            staging, Path(out_dir), passages, docs, codebook, model_version, report, threshold, models_dir
        )


def _write_outputs(
    staging: Path,
    out_dir: Path,
    passages: list,
    docs: list[dict],
    codebook: Codebook,
    model_version: str | None,
    report: bool,
    threshold: float,
    models_dir: Path | None,
) -> dict:
    """build_outputs' work, writing under ``staging``; the topics are read from the real ``out_dir``."""
    from pipeline.classify import read_card
    from pipeline.topics import topic_view

    titles = {d["doc_id"]: d["title"] or d["doc_id"] for d in docs}
    written = write_matrices(passages, codebook, staging / "matrices", titles, threshold)
    result = {"coverage": written["coverage"]}
    if report:
        comparison = write_comparison(passages, codebook, staging / "comparison")
        write_html_report(
            staging / "report" / "index.html",
            passages,
            codebook,
            docs,
            written["matrices"],
            written["coverage"],
            written["heatmaps"],
            comparison,
            model_version,
            threshold,
            topic_view(out_dir / "topics", codebook),
            written["compacts"],
            read_card(Path(models_dir)) if models_dir else None,
        )
        result["tests"] = comparison["tests"]
    return result


def write_passages(engine, out_dir: Path, model_version: str | None) -> list[str]:
    """``out_dir/passages/<doc_id>.json``: each current document with its passages and their labels.

    Files of documents that are no longer current (retired, failed) are removed,
    so the folder always matches the corpus.
    """
    from pipeline.store import document_rows, load_classifications, load_passages

    written = []
    folder = Path(out_dir) / "passages"
    for doc in document_rows(engine):
        path = folder / f"{doc['doc_id']}.json"
        if doc["status"] != "ok":
            path.unlink(missing_ok=True)
            continue
        labels = load_classifications(engine, doc["doc_id"], model_version) if model_version else {}
        passages = [{**p.to_json(), "classification": labels.get(p.id)} for p in load_passages(engine, doc["doc_id"])]
        write_json(path, {**doc, "passages": passages})
        written.append(doc["doc_id"])
    return written
