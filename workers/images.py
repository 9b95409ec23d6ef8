"""Step 10, the charts of a mail (a context's `images`, gateway/outbound/contexts/reports.py)
rasterised to PNG by CairoSVG, to travel as parts of the mail (Content-ID, RFC 2392).

Outlook renders no inline SVG and many clients fetch no remote image, so a chart goes as a
PNG inside the mail. CairoSVG needs the cairo library (libcairo2): it is imported only when a
mail has charts, and its absence fails that Delivery, with the reason, not the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.composer import Inline
from workers.render import RenderError

SCALE = 2  # twice the pixels of the <img> size: sharp on high-density screens


def inline_images(images: Sequence[dict[str, Any]]) -> list[Inline]:
    return [Inline(cid=i["cid"], filename=i["filename"], data=png(i["svg"])) for i in images]


def png(svg: str) -> bytes:
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: the cairo library itself is missing
        raise RenderError(f"cannot draw the charts (CairoSVG and libcairo2): {exc}") from exc
    # unsafe=False (the default): no external entity, file or URL is ever read
    data = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=SCALE)
    if not isinstance(data, bytes):
        raise RenderError("CairoSVG gave no PNG")
    return data
