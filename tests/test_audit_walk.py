"""The audit is one walk: rendering a report enters each audit module (reports/audits/) once.

The call graph is taken as the code runs, with Python's own profiler hook (sys.setprofile): every
call into an audit module from imagejourney code outside that module is an entry. Calls made by
pandas back into the module (a lambda given to .map) are not entries.
"""

import shutil
import sys
from collections import Counter
from pathlib import Path

from imagejourney.reports import audits
from imagejourney.reports.render import render_report

FORMAT_1_RUN = Path(__file__).parent / "data" / "run-format-1"
AUDITS = "imagejourney.reports.audits."


def test_render_report_enters_each_audit_module_once(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FORMAT_1_RUN, run)
    entries: Counter = Counter()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if callee.startswith(AUDITS) and caller != callee and caller.startswith("imagejourney."):
            entries[(callee, caller, frame.f_code.co_name)] += 1

    sys.setprofile(profile)
    try:
        render_report(run)
    finally:
        sys.setprofile(None)

    modules = sorted(f"{AUDITS}{p.stem}" for p in Path(audits.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert sorted(callee for callee, _, _ in entries) == modules
    assert all(
        count == 1 and caller == "imagejourney.reports.summary" and name == "audit"
        for (_, caller, name), count in entries.items()
    ), entries
