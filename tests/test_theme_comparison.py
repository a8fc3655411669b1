"""The cross-sector measures of the topic stage, by hand on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.theme_comparison import mean_pairwise_ari, prevalence_intervals, seed_recurrence, theme_spread


def frame(rows):
    return pd.DataFrame(rows, columns=["passage_id", "doc_id", "study", "sector", "topic"])


def test_theme_spread_counts_themes_reaching_two_sectors_and_document_themes():
    rows = []
    # theme 0: 8 vg + 2 ouderenzorg (20 % ≥ 10 %): shared; theme 1: 19 vg-a + 1 vg-b: one document (95 %)
    rows += [(f"a{i}", "vg-a", "s1", "vg", 0) for i in range(8)]
    rows += [(f"o{i}", "oz", "s2", "ouderenzorg", 0) for i in range(2)]
    rows += [(f"b{i}", "vg-a", "s1", "vg", 1) for i in range(19)] + [("c0", "vg-b", "s3", "vg", 1)]
    rows += [(f"x{i}", "oz", "s2", "ouderenzorg", -1) for i in range(5)]  # outliers: no theme
    spread = theme_spread(frame(rows))
    assert spread["themes"] == 2 and spread["shared_themes"] == [0]
    assert spread["two_sector_share"] == pytest.approx(10 / 30, abs=1e-4)
    assert spread["document_themes"] == [1] and spread["document_theme_share"] == 0.5
    assert spread["largest_share"] == pytest.approx(20 / 35, abs=1e-4)
    rows[8] = ("o0", "oz", "s2", "ouderenzorg", 1)  # theme 0 now 8 vg + 1 ouderenzorg (11 %): still shared
    assert theme_spread(frame(rows))["shared_themes"] == [0]
    rows[9] = ("o1", "oz", "s2", "ouderenzorg", 1)  # theme 0: vg only; theme 1: 2 ouderenzorg of 22 = 9 %
    assert theme_spread(frame(rows))["shared_themes"] == []


def test_prevalence_resamples_documents_where_a_sector_has_several():
    rows = [(f"a{i}", "vg-a", "s1", "vg", i % 2) for i in range(40)]
    rows += [(f"b{i}", "vg-b", "s2", "vg", 0) for i in range(20)]
    rows += [(f"o{i}", "oz", "s3", "ouderenzorg", int(i < 30)) for i in range(60)]
    table = prevalence_intervals(frame(rows), "sector", rounds=400)
    vg = table[table.sector == "vg"].set_index("topic")
    assert set(vg["resampled"]) == {"documenten"} and set(vg["n_documents"]) == {2}
    assert vg.loc[0, "share"] == pytest.approx(40 / 60, abs=1e-4)
    # resampling two documents: the share of theme 0 ranges from document a's 0.5 to document b's 1.0
    assert vg.loc[0, "low"] == pytest.approx(0.5) and vg.loc[0, "high"] == pytest.approx(1.0)
    oz = table[table.sector == "ouderenzorg"].set_index("topic")
    assert set(oz["resampled"]) == {"passages"}
    assert oz.loc[1, "low"] < 0.5 < oz.loc[1, "high"] and oz.loc[1, "high"] - oz.loc[1, "low"] < 0.35


def test_a_theme_of_one_seed_only_is_found_once():
    reference = [0] * 10 + [1] * 10 + [2] * 4
    same = [5] * 10 + [7] * 10 + [5] * 4  # theme 2 merged into another: not found again
    shuffled = [3] * 10 + [4] * 10 + [9] * 4
    assert seed_recurrence(reference, [same, shuffled]) == {0: 3, 1: 3, 2: 2}
    assert seed_recurrence(reference, [same, same]) == {0: 3, 1: 3, 2: 1}
    assert mean_pairwise_ari([reference, shuffled]) == 1.0
    assert mean_pairwise_ari([reference, list(np.random.default_rng(0).permutation(reference))]) < 0.3
