"""Matplotlib set up once for files, not screens, and the one way figures become PNG bytes.

Both the report and the topic stage draw figures; keeping the renderer here lets
either import it without importing the other (no cycle between report and topics).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

PNG_DPI = 120

__all__ = ["plt", "png"]


def png(fig) -> bytes:
    """The figure as PNG bytes (tight bounding box), closed afterwards so figures never pile up."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
