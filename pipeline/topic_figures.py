"""The topic stage's figures: the intertopic map and the sector × theme heatmap, each as standalone HTML
(plotly.js inline) and as PNG (matplotlib) for the report. Plain data in, bytes out."""

from __future__ import annotations

import numpy as np
import pandas as pd

HEATMAP_THEMES = 15  # more rows than this do not fit an A4 page at a readable size
DIV_ID = "mgz-figure"  # fixed, so the same model writes byte-identical HTML


def intertopic_figures(coords: pd.DataFrame, labels: dict[int, str]) -> tuple[str, bytes]:
    import plotly.graph_objects as go

    from pipeline.figures import plt
    from pipeline.figures import png as _png

    hover = [labels[t] for t in coords["topic"]]
    radius = 8 + 40 * np.sqrt(coords["size"] / coords["size"].max())
    fig = go.Figure(
        go.Scatter(
            x=coords["x"], y=coords["y"], mode="markers+text", text=[str(t) for t in coords["topic"]],
            hovertext=hover, hoverinfo="text", marker={"size": radius, "opacity": 0.6},
        )
    )  # fmt: skip
    fig.update_layout(title="Intertopic-kaart (afstand = verschil in inhoud, grootte = aantal passages)")
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id=DIV_ID)
    figure, (ax, legend) = plt.subplots(1, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [3, 2]})
    ax.scatter(coords["x"], coords["y"], s=radius**2, alpha=0.5)
    for _, row in coords.iterrows():
        ax.annotate(str(int(row["topic"])), (row["x"], row["y"]), fontsize=8, ha="center", va="center")
    ax.set_title("Intertopic-kaart (afstand = verschil in inhoud, grootte = aantal passages)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    legend.axis("off")
    lines = [labels[int(t)][:60] for t in coords["topic"]]
    legend.text(0, 1, "\n".join(lines), va="top", fontsize=max(5, min(9, 360 // max(1, len(lines)))))
    return html, _png(figure)


def heatmap_figures(shares: pd.DataFrame, labels: dict[int, str]) -> tuple[str, bytes]:
    import textwrap

    import plotly.graph_objects as go

    from pipeline.figures import plt
    from pipeline.figures import png as _png

    # Themes as rows (at most HEATMAP_THEMES, the largest), sectors as columns: fits an A4 page upright,
    # with labels wrapped instead of cut and every value printed at a readable size.
    sizes = shares.sum(axis=0).sort_values(ascending=False, kind="stable")
    top = list(sizes.index[:HEATMAP_THEMES])
    matrix = shares[top].T
    rows = [textwrap.fill(labels[t], 38) for t in top]
    fig = go.Figure(
        go.Heatmap(z=matrix.values, y=[labels[t] for t in top], x=list(matrix.columns), colorscale="Blues")
    )
    fig.update_layout(title="Aandeel passages per thema, per sector", yaxis={"autorange": "reversed"})
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id=DIV_ID)
    figure, ax = plt.subplots(figsize=(8.27, min(11.0, 1.6 + 0.55 * len(top))))
    ax.imshow(matrix.values, cmap="Blues", aspect="auto", vmin=0, vmax=max(0.01, float(matrix.values.max())))
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(len(matrix.columns)), list(matrix.columns), fontsize=10)
    ax.xaxis.tick_top()
    peak = float(matrix.values.max()) or 1.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix.values[i, j]
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=9,
                    color="white" if value > 0.6 * peak else "black")  # fmt: skip
    title = f"Aandeel van de passages van elke sector per thema (grootste {len(top)} thema's)"
    ax.set_title(title, fontsize=10, pad=28)
    figure.tight_layout()
    return html, _png(figure)
