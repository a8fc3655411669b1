"""The report's section on inductive themes, compared across sectors and studies (Dutch, self-contained HTML).

Kept apart from pipeline/report.py, which only places this section: it reads what the topic stage wrote to
``outputs/topics/`` and nothing else, so the report follows the theme outputs without refitting.
What a researcher writing a cross-sector synthesis needs first: which themes are shared by sectors and
which are one study's own, how prevalent each shared theme is per sector with an interval, the same theme
side by side in each sector's own words, and where the theme sits in the framework per sector. A theme
that turned up in one seed's fit only is listed apart and not presented as a finding.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from pipeline.codebook import Codebook

NO_CONDITION = "geen_voorwaarde"
PASSAGE_CHARS = 420  # a representative passage is cut here in the side-by-side table

TEMPLATE = """
<h2>Thema's uit de documenten zelf (inductief, BERTopic), vergeleken over sectoren</h2>
<p class="caption">{{ s.n_topics }} thema's over {{ s.n_passages }} inhoudelijke passages, gevonden zonder het
codeerschema. {{ pct(s.outliers_after_reduction) }} van de passages past bij geen enkel thema (vóór toewijzing op
gelijkenis {{ pct(s.outliers_before_reduction) }}). {{ pct(s.two_sector_share) }} van de passages met een thema zit
in een thema dat in minstens twee sectoren voorkomt (elk ≥ 10 % van het thema).
{% if s.seed_ari is not none %}Stabiliteit: dezelfde instellingen met {{ s.params.seed_runs }} verschillende
startwaarden geven een gemiddelde overeenstemming (ARI) van {{ "%.2f"|format(s.seed_ari) }}.{% endif %}
Prevalentie = aandeel van de passages van een sector (of studie) in het thema, met een 95 %-bootstrapinterval:
over documenten binnen een sector met meerdere documenten, anders over passages (dan zegt het interval alleen
hoe precies de mix van dat ene document gemeten is, niet hoe de sector is).</p>
<img alt="Aandeel passages per thema, per sector" src="data:image/png;base64,{{ heatmap }}">

<h3>Gedeelde thema's: prevalentie per sector</h3>
<table><tr><th>Thema</th><th>n</th>{% for sec in sectors %}<th>{{ sec }}</th>{% endfor %}<th>Vaakst onder</th>
<th>Geen voorwaarde</th></tr>
{% for r in shared %}<tr><td>{{ r.label }}</td><td>{{ r.size }}</td>{% for sec in sectors %}
<td>{{ r.prevalence[sec] }}</td>{% endfor %}<td>{{ r.condition }}</td><td>{{ r.no_condition }}</td></tr>{% endfor %}
</table>

{% if specific %}<h3>Studiespecifieke thema's (≥ 90 % uit één document)</h3>
<table><tr><th>Thema</th><th>n</th><th>Document</th><th>Woorden</th></tr>
{% for r in specific %}<tr><td>{{ r.label }}</td><td>{{ r.size }}</td><td>{{ r.document }}</td>
<td>{{ r.words }}</td></tr>{% endfor %}</table>{% endif %}

{% if unstable %}<p class="warn">Alleen bij één startwaarde gevonden, daarom niet als bevinding getoond:
{{ unstable|join("; ") }}.</p>{% endif %}

<h3>Hetzelfde thema per sector, naast elkaar</h3>
<p class="caption">Per gedeeld thema de passage van elke sector die het dichtst bij het midden van het thema ligt.</p>
{% for r in side %}<h4>{{ r.label }}</h4>
<table><tr>{% for sec in sectors %}<th>{{ sec }}</th>{% endfor %}</tr><tr>
{% for sec in sectors %}<td>{% for p in r.passages.get(sec, []) %}<p>{{ p }}</p>{% else %}–{% endfor %}</td>
{% endfor %}</tr></table>{% endfor %}

<h3>Thema × systeemvoorwaarde, per sector</h3>
<p class="caption">Per thema en sector de voorwaarde waar de passages het vaakst onder vallen (aandeel van de
passages van die sector in het thema); de volledige tabel staat in topics/topic_condition_per_sector.csv.</p>
<table><tr><th>Thema</th>{% for sec in sectors %}<th>{{ sec }}</th>{% endfor %}</tr>
{% for r in shared %}<tr><td>{{ r.label }}</td>{% for sec in sectors %}<td>{{ r.by_sector[sec] }}</td>
{% endfor %}</tr>{% endfor %}</table>
"""

ABSENT = """
<h2>Thema's uit de documenten zelf (inductief, BERTopic)</h2>
<p class="warn">Geen thema's: het corpus is te klein voor een topicmodel, of `mgz topics` is nog niet gedraaid.</p>
"""


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def theme_section(folder: Path, codebook: Codebook) -> Markup:
    """The rendered section (HTML), or a notice when no topic model was made."""
    folder = Path(folder)
    needed = ("summary.json", "topics.csv", "passage_topics.csv", "theme_prevalence_sector.csv",
              "theme_sector_passages.csv", "topic_condition_per_sector.csv")  # fmt: skip
    if not all((folder / name).exists() for name in needed):
        return Markup(ABSENT)
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    table = pd.read_csv(folder / "topics.csv")
    table = table[table["topic"] != -1]
    prevalence = pd.read_csv(folder / "theme_prevalence_sector.csv")
    crosstab = pd.read_csv(folder / "topic_condition_per_sector.csv")
    side = pd.read_csv(folder / "theme_sector_passages.csv")
    assignments = pd.read_csv(folder / "passage_topics.csv", dtype={"passage_id": str})
    names = {c: codebook.fields["conditions"].label(c).name for c in codebook.ids("conditions")}
    names[NO_CONDITION] = "geen voorwaarde"
    sectors = sorted(prevalence["sector"].unique())
    shared_ids = set(summary.get("shared_themes", []))
    specific_ids = set(summary.get("document_themes", []))
    unstable_ids = set(summary.get("themes_in_one_seed_only", []))
    labels = dict(zip(table["topic"], table["label"], strict=True))

    def prevalence_cells(topic: int) -> dict[str, str]:
        part = prevalence[prevalence["topic"] == topic].set_index("sector")
        return {sec: f"{_pct(part.loc[sec, 'share'])} ({100 * part.loc[sec, 'low']:.0f}–"
                     f"{100 * part.loc[sec, 'high']:.0f})" for sec in sectors}  # fmt: skip

    def conditions(topic: int) -> tuple[str, str, dict[str, str]]:
        part = crosstab[crosstab["topic"] == topic]
        overall = part.groupby("condition")["n"].sum()
        total = overall.sum()
        framed = overall.drop(NO_CONDITION, errors="ignore")
        top = f"{names.get(framed.idxmax(), framed.idxmax())} ({_pct(framed.max() / total)})" if len(framed) else ""
        none = _pct(overall.get(NO_CONDITION, 0) / total) if total else ""
        by_sector = {}
        for sec in sectors:
            counts = part[part["sector"] == sec].set_index("condition")["n"]
            if counts.sum() == 0:
                by_sector[sec] = "–"
                continue
            best = counts.idxmax()
            by_sector[sec] = f"{names.get(best, best)} ({_pct(counts.max() / counts.sum())}, n={int(counts.sum())})"
        return top, none, by_sector

    shared, specific, side_rows = [], [], []
    for record in table.itertuples():
        topic = int(record.topic)
        if topic in unstable_ids:
            continue
        if topic in shared_ids:
            top, none, by_sector = conditions(topic)
            shared.append({"label": record.label, "size": record.size, "prevalence": prevalence_cells(topic),
                           "condition": top, "no_condition": none, "by_sector": by_sector})  # fmt: skip
            passages = side[(side["topic"] == topic) & (side["rank"] == 1)]
            side_rows.append({
                "label": record.label,
                "passages": {s: [t[:PASSAGE_CHARS] + ("…" if len(t) > PASSAGE_CHARS else "")]
                             for s, t in zip(passages["sector"], passages["text"], strict=True)},
            })  # fmt: skip
        if topic in specific_ids:
            docs = assignments.loc[assignments["topic"] == topic, "doc_id"].value_counts()
            specific.append({"label": record.label, "size": record.size,
                             "document": f"{docs.index[0]} ({_pct(docs.iloc[0] / docs.sum())})",
                             "words": record.words})  # fmt: skip
    png = (folder / "sector_topic_heatmap.png").read_bytes()
    html = (
        Environment(autoescape=select_autoescape(default=True))
        .from_string(TEMPLATE)
        .render(
            s=summary,
            pct=_pct,
            heatmap=base64.b64encode(png).decode(),
            sectors=sectors,
            shared=shared,
            specific=specific,
            side=side_rows,
            unstable=[labels[t] for t in sorted(unstable_ids) if t in labels],
        )
    )
    return Markup(html)
