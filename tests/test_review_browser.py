"""The review screen as an analyst uses it: a real Chromium, driven by Playwright, keyboard only.

Playwright's own browser download is impossible here, so the test drives Debian's
chromium (``apt-get install chromium``) and is skipped when that is absent.
Screenshots go to the test's tmp folder (and to $MGZ_SCREENSHOTS when set).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from pipeline.accounts import get_user
from pipeline.nlp import load_glossary
from pipeline.report import build_outputs
from pipeline.review import AdjudicationRow, assign_double_coding, normalise_labels, record_decision, reviewed_labels
from pipeline.store import ReviewRow, session
from pipeline.web.app import create_app, running

from .review_fixtures import DOC, MODEL, PASSWORD, TRICKS, build_review_store

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")


@pytest.fixture()
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if os.environ.get("MGZ_SCREENSHOTS"):
        shutil.copytree(folder, os.environ["MGZ_SCREENSHOTS"], dirs_exist_ok=True)


def cell(matrix: pd.DataFrame, condition: str, stakeholder: str, polarity: str) -> pd.Series:
    rows = matrix[
        (matrix["condition"] == condition)
        & (matrix["interactie_type"].fillna("") == "")
        & (matrix["stakeholder"].fillna("") == stakeholder)
        & (matrix["polarity"] == polarity)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_an_analyst_reviews_three_passages_with_the_keyboard(tmp_path, shots):
    rs = build_review_store(tmp_path / "store")
    by_confidence = sorted((p.id for p in rs.passages), key=lambda pid: rs.confidence[pid])
    first, second, third = by_confidence[:3]
    # The second passage's model labels, which the analyst corrects.
    assert rs.labels[second]["conditions"] == ["harde_instituties"]
    assert rs.labels[second]["polarity"] == "belemmerend" and rs.labels[second]["stakeholders"] == ["intermediairs"]
    app = create_app(rs.engine, rs.codebook, model_version=MODEL, glossary=load_glossary())
    problems: list[str] = []
    with running(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)

        page.goto(base + "/")
        assert page.url.startswith(base + "/login")
        page.screenshot(path=shots / "01-login.png")
        page.keyboard.type("anna")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.startswith(base + "/queue")
        page.screenshot(path=shots / "02-queue.png", full_page=True)

        # Enter starts with the least certain passage.
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert f"/passages/{first}" in page.url
        page.screenshot(path=shots / "03-first-passage.png", full_page=True)
        with page.expect_navigation():
            page.keyboard.press("Enter")  # 1: accept as shown

        # 2: correct. Codebook order gives the keys: 2 = harde_instituties off, 5 = competenties on,
        # s = bevorderend (second polarity label); the primary condition follows by itself.
        assert f"/passages/{second}" in page.url
        assert "Beslissing opgeslagen" in page.inner_text(".notice")
        for key in ("Digit2", "Digit5", "KeyS"):
            page.keyboard.press(key)
        assert page.is_checked('input[name="primary_condition"][value="competenties"]')
        page.screenshot(path=shots / "04-correction.png", full_page=True)
        with page.expect_navigation():
            page.keyboard.press("Enter")

        # 3: accept with a memo (m to write, Escape to leave the memo, Enter to save).
        assert f"/passages/{third}" in page.url
        page.keyboard.press("m")
        page.keyboard.type("Twijfel: gaat dit over de <HAP> of de huisarts?")
        page.keyboard.press("Escape")
        page.screenshot(path=shots / "05-memo.png", full_page=True)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.screenshot(path=shots / "06-after-three.png", full_page=True)

        # Untrusted text from the PDF is shown as text, and nothing in it runs.
        script = next(p for p in rs.passages if p.text == TRICKS)
        page.goto(f"{base}/passages/{script.id}?status=all")
        assert page.inner_text("#passage-text") == TRICKS
        page.screenshot(path=shots / "07-untrusted-text.png", full_page=True)
        page.goto(f"{base}/queue?status=done&order=reading")
        page.screenshot(path=shots / "08-reviewed.png", full_page=True)
        # The decision history names the model version whose labels the analyst was shown.
        page.goto(f"{base}/passages/{second}?status=all")
        latest = page.locator(".history li.latest")
        assert latest.locator(".model-version").is_visible()
        assert f"model {MODEL} getoond" in latest.inner_text()
        page.screenshot(path=shots / "08b-history.png", full_page=True)
        browser.close()
    assert problems == []

    with session(rs.engine) as s:
        rows = list(s.scalars(select(ReviewRow).order_by(ReviewRow.id)))
    assert [(r.passage_id, r.reviewer, r.model_version) for r in rows] == [
        (first, "anna", MODEL),
        (second, "anna", MODEL),
        (third, "anna", MODEL),
    ]
    assert rows[0].labels == rs.labels[first] == rows[0].labels_shown and rows[0].memo is None
    assert rows[1].labels_shown == rs.labels[second]
    assert rows[1].labels == {
        "conditions": ["competenties"],
        "interactie_type": None,
        "polarity": "bevorderend",
        "stakeholders": ["intermediairs"],
        "primary_condition": "competenties",
    }
    assert rows[2].labels == rs.labels[third] and rows[2].memo == "Twijfel: gaat dit over de <HAP> of de huisarts?"

    # The next matrix: the correction moved the passage to its new cell; three passages rest on review.
    out = tmp_path / "outputs"
    build_outputs(rs.engine, rs.codebook, out, MODEL, report=False)
    matrix = pd.read_csv(out / "matrices" / f"{DOC}.csv", keep_default_na=False)
    assert second in cell(matrix, "competenties", "intermediairs", "bevorderend")["passage_ids"].split()
    assert second not in cell(matrix, "harde_instituties", "intermediairs", "belemmerend")["passage_ids"].split()
    coverage = json.loads((out / "matrices" / "coverage.json").read_text("utf-8"))[DOC]
    assert coverage["reviewed"] == 3 and coverage["model_only"] == len(rs.passages) - 3
    assert len(list(shots.glob("*.png"))) == 9


def test_a_decision_survives_an_expired_session(tmp_path, shots):
    """The session ends while the analyst codes: Enter saves nothing, says so, keeps the choices;
    after logging in again in another tab, Enter on the same page stores the decision."""
    from pipeline.accounts import WebSessionRow

    rs = build_review_store(tmp_path / "store")
    app = create_app(rs.engine, rs.codebook, model_version=MODEL, glossary=load_glossary())

    def log_in(page, base):
        page.goto(base + "/login")
        page.fill("input[name=name]", "anna")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")

    with running(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        log_in(page, base)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        passage = page.url.split("/passages/")[1].split("?")[0]
        page.keyboard.press("Digit5")  # competenties on
        with rs.engine.begin() as c:  # the session ends (expiry, password change, server restart)
            c.execute(WebSessionRow.__table__.delete())
        page.keyboard.press("Enter")
        page.wait_for_selector("#save-error:not([hidden])")
        assert "sessie is verlopen" in page.inner_text("#save-error")
        assert page.is_checked('input[name="conditions"][value="competenties"]')
        assert f"/passages/{passage}" in page.url
        page.screenshot(path=shots / "09-session-expired.png", full_page=True)

        other = context.new_page()
        log_in(other, base)
        other.close()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        browser.close()
    with session(rs.engine) as s:
        [row] = list(s.scalars(select(ReviewRow)))
    assert row.passage_id == passage and "competenties" in row.labels["conditions"] and row.reviewer == "anna"


def test_an_admin_reads_the_agreement_and_adjudicates_with_the_keyboard(tmp_path, shots):
    """Two analysts double-coded four passages and differ on one polarity; the admin reads kappa and
    alpha on the agreement page, opens the disagreement and settles it with the keyboard."""
    rs = build_review_store(tmp_path / "store")
    anna, bert, chris = (get_user(rs.engine, name) for name in ("anna", "bert", "chris"))
    sample = [p.id for p in rs.passages[:4]]
    assert assign_double_coding(rs.engine, sample, ["anna", "bert"], chris) == 4
    polarity = {
        "anna": ["belemmerend", "belemmerend", "bevorderend", "neutraal"],
        "bert": ["belemmerend", "bevorderend", "bevorderend", "neutraal"],
    }
    for k, pid in enumerate(sample):
        for coder in (anna, bert):
            labels = {"conditions": ["infrastructuur"], "polarity": polarity[coder.name][k]}
            labels["stakeholders"] = ["aanbieders"]
            record_decision(
                rs.engine,
                rs.codebook,
                coder,
                pid,
                normalise_labels(rs.codebook, labels),
                labels_shown=rs.labels[pid],
                model_version=MODEL,
                memo=f"memo van {coder.name}",
            )
    app = create_app(rs.engine, rs.codebook, model_version=MODEL, glossary=load_glossary())
    problems: list[str] = []
    with running(app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(base + "/login")
        page.fill("input[name=name]", "chris")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        with page.expect_navigation():
            page.click("text=Overeenstemming")
        headers = page.inner_text("table.agreement thead")
        for column in ("anna × bert", "anna × model", "bert × model", "α alle analisten"):
            assert column in headers
        polarity_row = page.inner_text("table.agreement tr.field-row:has-text('Richting')")
        assert "0.636" in polarity_row and "0.667" in polarity_row  # anna × bert kappa; alpha over all
        interaction_row = page.inner_text("table.agreement tr.field-row:has-text('Type interactie')")
        assert "n=0" in interaction_row and "0%, n=0" not in interaction_row  # nobody coded interactie: no figure
        assert page.locator("ol.disagreements > li").count() == 1
        page.screenshot(path=shots / "10-agreement.png", full_page=True)

        with page.expect_navigation():
            page.click("ol.disagreements a")
        assert f"/passages/{sample[1]}" in page.url
        assert "memo van anna" in page.inner_text(".mode.adjudicate") and "memo van bert" in page.inner_text(
            ".mode.adjudicate"
        )
        page.keyboard.press("KeyD")  # polarity: neutraal (third label)
        assert page.is_checked('input[name="polarity"][value="neutraal"]')
        page.screenshot(path=shots / "11-adjudication.png", full_page=True)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.goto(base + "/agreement")
        assert "beslecht door chris" in page.inner_text("ol.disagreements")
        page.screenshot(path=shots / "12-adjudicated.png", full_page=True)
        browser.close()
    assert problems == []
    with session(rs.engine) as s:
        assert [a.passage_id for a in s.scalars(select(AdjudicationRow))] == [sample[1]]
    assert reviewed_labels(rs.engine)[sample[1]]["polarity"] == "neutraal"
