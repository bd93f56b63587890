"""`imagejourney profile check`: open the page and say which profile selectors match, and what
the page has instead where one does not."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from .profile import UIProfile
from .runner import StepFailed, log_in

# What the page offers, by kind, described with the most stable selector available.
CANDIDATES_JS = """(kind) => {
  const css = {
    field: "input:not([type=hidden]):not([type=button]):not([type=submit]), textarea, select, [contenteditable=true]",
    control: "button, [role=button], input[type=submit], input[type=button], a[download], a[href]",
    output: "img, canvas, [id*=output], [id*=result], [class*=gallery], [id*=gallery]",
  }[kind];
  const describe = (el) => {
    let selector = el.id ? "#" + CSS.escape(el.id) : el.getAttribute("name") ? `${el.tagName.toLowerCase()}[name="${el.getAttribute("name")}"]`
      : el.getAttribute("data-testid") ? `[data-testid="${el.getAttribute("data-testid")}"]` : el.tagName.toLowerCase();
    const label = (el.getAttribute("aria-label") || el.getAttribute("placeholder") || el.innerText || el.getAttribute("alt") || "").trim().slice(0, 30);
    return label ? `${selector} (${el.tagName.toLowerCase()} "${label}")` : `${selector} (${el.tagName.toLowerCase()})`;
  };
  const seen = new Set();
  return [...document.querySelectorAll(css)].filter((el) => el.getClientRects().length > 0)
    .map(describe).filter((d) => !seen.has(d) && seen.add(d)).slice(0, 8);
}"""


@dataclass
class SelectorCheck:
    role: str
    selector: str
    matches: int
    page_has: list[str]


def any_choice(selector: str) -> str:
    """A choice field's selector ({value} in it) made to match any of its choices:
    `[value='{value}']` becomes `[value]`, `:has-text('{value}')` is dropped."""
    selector = re.sub(r"""\[([^\]=]+?)\s*=\s*(['"]?)\{value\}\2\]""", r"[\1]", selector)
    selector = re.sub(r""":has-text\((['"])\{value\}\1\)""", "", selector)
    return selector.replace("{value}", "none")  # another form: check the whole-image choice


def profile_selectors(profile: UIProfile) -> list[tuple[str, str, str]]:
    """(role, selector, kind of candidate to suggest) for every selector the profile names."""
    rows = [("ready", profile.ready, "control")]
    rows += [(f"field {name}", any_choice(selector), "field") for name, selector in profile.fields.items()]
    rows += [(f"control {name}", selector, "control") for name, selector in profile.controls.items()]
    rows.append(("output", profile.output, "output"))
    for condition in profile.done:
        for key in ("selector", "hidden", "visible", "enabled"):
            if key in condition:
                rows.append((f"done ({condition['kind']})", condition[key], "control"))
    if profile.error:
        rows.append(("error", profile.error["selector"], "control"))
    return rows


def check_profile(page: Page, base_url: str, profile: UIProfile, timeout_ms: int = 15_000) -> list[SelectorCheck]:
    log_in(page, base_url, profile)
    url = base_url.rstrip("/") + profile.path
    try:
        page.goto(url)
    except PlaywrightError as exc:
        raise StepFailed(f"could not open {url}: {str(exc).splitlines()[0]}") from None
    try:
        page.wait_for_selector(profile.ready, state="attached", timeout=timeout_ms)
    except PlaywrightError:
        pass  # reported below as a ready selector with no match
    checks = []
    for role, selector, kind in profile_selectors(profile):
        # "hidden" spinners may be absent until an action runs; that is not a mismatch.
        matches = page.locator(selector).count()
        page_has = [] if matches or role.startswith("done (hidden") else page.evaluate(CANDIDATES_JS, kind)
        checks.append(SelectorCheck(role, selector, matches, page_has))
    return checks


def format_checks(checks: list[SelectorCheck]) -> list[str]:
    lines = []
    for c in checks:
        if c.matches:
            status = "ok"
        elif c.role.startswith("done (hidden"):
            status = "absent"  # fine for a spinner shown only while working
        else:
            status = "MISSING"
        line = f"  {status:8} {c.role:22} {c.selector:34} {c.matches} match{'es' if c.matches != 1 else ''}"
        if c.page_has:
            line += f"; the page has: {', '.join(c.page_has)}"
        lines.append(line)
    return lines
