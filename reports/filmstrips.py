"""The previews each image action painted, with their times after the click: the report's filmstrips."""

from __future__ import annotations

import pandas as pd

from .records import safe_link
from .run import Run
from .timing import previews_of_this_action


def filmstrips(run: Run, limit: int | None = None) -> list[dict]:
    """Per image action of the counted attempts: the previews the creator saw (kept by the
    runner) with their paint times after the click, then the final — WebPageTest's filmstrip
    for one generation."""
    counted = {
        (r.prompt_id, int(r.step_index), int(r.attempt))
        for r in run.steps.itertuples()
        if r.status == "ok" and not pd.isna(r.step_index)
    }
    strips: list[dict] = []
    for e in run.events:
        if (
            e.get("event") != "action"
            or (str(e.get("prompt_id")), e.get("step_index"), int(e.get("attempt") or 1)) not in counted
        ):
            continue
        probe = e.get("probe") or {}
        click, final = probe.get("click"), (probe.get("final") or {}).get("t")
        if click is None or final is None:
            continue
        said: list[str] = []  # unsafe or missing paths are already reported with the step table
        frames = [
            {"image": link, "after_ms": p["t"] - click}
            for p in e.get("previews") or []
            if (link := safe_link(run.path, p.get("image"), said, "preview"))
        ]
        if limit is not None and len(strips) == limit:
            break
        strips.append(
            {
                "prompt_id": e["prompt_id"],
                "step_index": e["step_index"],
                "action": e["action"],
                "frames": frames,
                "final": {"image": safe_link(run.path, e.get("image"), said, "image"), "after_ms": final - click},
                "previews_painted": len(previews_of_this_action(probe.get("paints", []), click, probe["final"])),
                "previews_not_kept": sum(1 for p in e.get("previews") or [] if p.get("not_kept")),
            }
        )
    return strips
