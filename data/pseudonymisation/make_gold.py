"""Rebuild ``gold.jsonl`` from the hand-made inventory below.

The inventory was written by reading the four bundled documents (see README.md
in this folder). Each entry names a document, the literal mention as it stands
in the extracted text (``mgz extract --format json corpus/X.pdf``, field
``text``), the person id and type. This script only finds every occurrence of
each literal and checks the counts the annotator wrote down, so a change in
extraction that moves or breaks a mention fails loudly instead of silently
shifting spans.

Run: ``python data/pseudonymisation/make_gold.py /path/to/extracted-json-dir``
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

# (doc, mention literal (regex-escaped, \s+ allowed between words), expected count,
#  type, person/entity id, subject)
P, O, L = "person", "organisation", "place"
EERSTE = "eerstelijn-parkstad-samenwerking"
OUDER = "ouderenzorg-mgz-in-de-regio-2023"
DEEL = "vg-deelsessie-huisartsenzorg"
VERK = "vg-verkenning-convenant-mgz"

INVENTORY: list[tuple[str, str, int, str, str, bool]] = [
    # --- eerstelijn: cited authors only (interviewees are anonymous roles) ---
    (EERSTE, "Standberg-Larsen", 1, P, "standberg-larsen", False),
    (EERSTE, "Huber", 1, P, "huber", False),
    (EERSTE, "Mackenbach", 1, P, "mackenbach", False),
    (EERSTE, "Rechel", 3, P, "rechel", False),
    (EERSTE, "Doyle", 1, P, "doyle", False),
    (EERSTE, "Grundy", 1, P, "grundy", False),
    (EERSTE, "McKee", 1, P, "mckee", False),
    (EERSTE, "Konings", 1, P, "konings", False),
    (EERSTE, "Van Beek", 1, P, "van-beek", False),
    (EERSTE, "Soeters", 1, P, "soeters", False),
    (EERSTE, "Verhoeks", 1, P, "verhoeks", False),
    (EERSTE, "Koelen", 1, P, "koelen", False),
    (EERSTE, "Kaats", 2, P, "kaats", False),
    (EERSTE, "Opheij", 2, P, "opheij", False),
    (EERSTE, "Koppenjan", 2, P, "koppenjan", False),
    (EERSTE, "Klijn", 2, P, "klijn", False),
    (EERSTE, "Tjemkes", 2, P, "tjemkes", False),
    (EERSTE, r"Vos(?=, &)", 1, P, "vos", False),
    (EERSTE, r"Burgers(?=, 2012)", 1, P, "burgers", False),
    (EERSTE, r"Van\s+Delden", 3, P, "van-delden", False),
    (EERSTE, r"Yin(?=, 1994)", 2, P, "yin", False),
    (EERSTE, "Neuman", 1, P, "neuman", False),
    (EERSTE, "Karasek", 1, P, "karasek", False),
    (EERSTE, "van der Geest", 3, P, "van-der-geest", False),
    (EERSTE, "Ruwaard", 1, P, "ruwaard", False),
    # "ik ben Jantje, Pietje, Klaasje": the Dutch placeholder for "anybody".
    (EERSTE, "Jantje", 1, P, "placeholder-jantje", False),
    (EERSTE, "Pietje", 1, P, "placeholder-pietje", False),
    (EERSTE, "Klaasje", 1, P, "placeholder-klaasje", False),
    (EERSTE, "Berenschot", 3, O, "org-berenschot", False),
    (EERSTE, "Argenout", 1, O, "org-argenout", False),
    (EERSTE, "Zichtbare Schakel", 7, O, "org-zichtbare-schakel", False),
    (EERSTE, "Universiteit Maastricht", 1, O, "org-universiteit-maastricht", False),
    (EERSTE, "ZonMw", 4, O, "org-zonmw", False),
    (EERSTE, "ZonMW", 1, O, "org-zonmw", False),
    (EERSTE, "Harvard", 2, O, "org-harvard", False),
    (EERSTE, r"Huisartsen Oostelijk Zuid-Limburg", 1, O, "org-hozl", False),
    (EERSTE, r"Parkstad", 8, L, "place-parkstad", False),
    (EERSTE, r"(?<!Oostelijk )Zuid-Limburg", 2, L, "place-zuid-limburg", False),
    (EERSTE, r"GGD Zuid Limburg", 1, O, "org-ggd-zuid-limburg", False),
    (EERSTE, r"Heerlen", 6, L, "place-heerlen", False),
    (EERSTE, r"Kerkrade", 3, L, "place-kerkrade", False),
    (EERSTE, r"Brunssum", 2, L, "place-brunssum", False),
    (EERSTE, r"Simpelveld", 2, L, "place-simpelveld", False),
    (EERSTE, r"Hoensbroek", 2, L, "place-hoensbroek", False),
    (EERSTE, r"Schinnen", 1, L, "place-schinnen", False),
    (EERSTE, r"Onderbanken", 1, L, "place-onderbanken", False),
    (EERSTE, r"Heuvelland", 1, L, "place-heuvelland", False),
    (EERSTE, r"Nederland\b", 4, L, "place-nederland", False),
    # --- ouderenzorg: the report's authors and cited authors ---
    (OUDER, r"J\.J\. Schuurmans", 1, P, "schuurmans-jj", False),
    (OUDER, r"O\. van der Woerd", 1, P, "van-der-woerd-o", False),
    (OUDER, r"N\. van Pijkeren", 1, P, "van-pijkeren-n", False),
    (OUDER, r"L\. Polfliet", 1, P, "polfliet-l", False),
    (OUDER, r"E\. Posthuma", 1, P, "posthuma-e", False),
    (OUDER, r"R\. Bal(?= &)", 1, P, "bal-r", False),
    (OUDER, r"I\. Wallenburg(?= \()", 1, P, "wallenburg-i", False),
    (OUDER, r"Nieber, L\.", 1, P, "nieber-l", False),
    (OUDER, r"Schuurmans, J\.\s?J\.", 2, P, "schuurmans-jj", False),
    (OUDER, r"Wallenburg, I\.", 2, P, "wallenburg-i", False),
    (OUDER, r"van Pijkeren, N\.(?:J\.)?", 2, P, "van-pijkeren-n", False),
    (OUDER, r"van der Woerd, O\.S\.", 1, P, "van-der-woerd-o", False),
    (OUDER, r"Stalenhoef, H\.S", 1, P, "stalenhoef-hs", False),
    (OUDER, r"Ivanova, D\.", 1, P, "ivanova-d", False),
    (OUDER, r"van Haperen, S\.P\.F\.", 1, P, "van-haperen-spf", False),
    (OUDER, r"Bal, R\.", 2, P, "bal-r", False),
    (OUDER, r"Batenburg, R\.", 1, P, "batenburg-r", False),
    (OUDER, r"Bosmans, M\.", 1, P, "bosmans-m", False),
    (OUDER, r"Versteeg, S\.", 1, P, "versteeg-s", False),
    (OUDER, r"Vis, E\.", 1, P, "vis-e", False),
    (OUDER, r"Asten, B\. van", 1, P, "van-asten-b", False),
    (OUDER, r"Vandermeulen L\.", 1, P, "vandermeulen-l", False),
    (OUDER, r"Kruis, L\. van der", 1, P, "van-der-kruis-l", False),
    (OUDER, r"Erasmus Universiteit(?:\s+Rotterdam)?", 5, O, "org-erasmus-universiteit", False),
    (OUDER, r"Vilans", 5, O, "org-vilans", False),
    (OUDER, r"Nivel", 1, O, "org-nivel", False),
    (OUDER, r"Prismant", 1, O, "org-prismant", False),
    (OUDER, r"Digicontact", 1, O, "org-digicontact", False),
    (OUDER, r"(?<!Universiteit )(?<!Universiteit\n\n)Rotterdam", 2, L, "place-rotterdam", False),
    (OUDER, r"Amsterdam", 2, L, "place-amsterdam", False),
    (OUDER, r"Utrecht", 3, L, "place-utrecht", False),
    (OUDER, r"Nijmegen", 2, L, "place-nijmegen", False),
    (OUDER, r"Groningen", 2, L, "place-groningen", False),
    (OUDER, r"Maastricht", 1, L, "place-maastricht", False),
    (OUDER, r"Leiden", 1, L, "place-leiden", False),
    (OUDER, r"Twente", 2, L, "place-twente", False),
    (OUDER, r"Achterhoek", 1, L, "place-achterhoek", False),
    (OUDER, r"Waardenland", 1, L, "place-waardenland", False),
    (OUDER, r"Zeeland", 2, L, "place-zeeland", False),
    (OUDER, r"Haaglanden", 1, L, "place-haaglanden", False),
    (OUDER, r"Friesland", 2, L, "place-friesland", False),
    (OUDER, r"Drenthe", 1, L, "place-drenthe", False),
    (OUDER, r"Flevoland", 1, L, "place-flevoland", False),
    (OUDER, r"Noord-Holland", 1, L, "place-noord-holland", False),
    (OUDER, r"West-Brabant", 1, L, "place-west-brabant", False),
    # --- deelsessie: the session lead and a participant (research subjects) ---
    (DEEL, r"Jeanette Jongsma", 1, P, "jeanette-jongsma", True),
    (DEEL, r"Jeanette(?! Jongsma)", 7, P, "jeanette-jongsma", True),
    (DEEL, r"Bianca", 5, P, "bianca", True),
    (DEEL, r"Zuidwester", 2, O, "org-zuidwester", False),
    (DEEL, r"VGN", 2, O, "org-vgn", False),
    # --- verkenning: one cited author group, organisations ---
    (VERK, r"Klein Woolthuis", 1, P, "klein-woolthuis", False),
    (VERK, r"KansPlus", 1, O, "org-kansplus", False),
    (VERK, r"InEen", 1, O, "org-ineen", False),
    (VERK, r"Ieder\(in\)", 1, O, "org-iederin", False),
    (VERK, r"medTzorg", 1, O, "org-medtzorg", False),
    (VERK, r"VGN", 7, O, "org-vgn", False),
    (VERK, r"Landelijke Huisartsen Vereniging", 1, O, "org-lhv", False),
    (VERK, r"Nederland\b", 4, L, "place-nederland", False),
]


def main(extracted: Path, out: Path) -> None:
    rows = []
    for doc in (EERSTE, OUDER, DEEL, VERK):
        text = json.loads((extracted / f"{doc}.json").read_text("utf-8"))["text"]
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        taken: list[tuple[int, int]] = []
        for d, literal, count, kind, ident, subject in INVENTORY:
            if d != doc:
                continue
            pattern = literal if any(c in literal for c in "\\(?[") else re.escape(literal)
            pattern = rf"(?<![\w-]){pattern}(?![\w])"
            hits = list(re.finditer(pattern, text))
            if len(hits) != count:
                raise SystemExit(f"{doc}: {literal!r} found {len(hits)} times, inventory says {count}")
            for m in hits:
                if any(m.start() < e and s < m.end() for s, e in taken):
                    raise SystemExit(f"{doc}: {literal!r} at {m.start()} overlaps another mention")
                taken.append((m.start(), m.end()))
                rows.append({"doc_id": doc, "start": m.start(), "end": m.end(), "text": m.group(0),
                             "type": kind, "id": ident, "subject": subject, "text_sha256": sha})
    rows.sort(key=lambda r: (r["doc_id"], r["start"]))
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("gold.jsonl"))
