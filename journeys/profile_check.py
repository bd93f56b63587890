"""`imagejourney profile check`: walk a UI profile on the live page, as a run would. Open the
page, do its `open:` steps, check every selector the profile names (fields, controls after their
`before:` steps, output, preview and final images, done conditions, server timings), fill each
field and read it back. Each line says ok or what is wrong, and what the page has instead
where a selector matches nothing. `--act generate` then runs one generate and says what it saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from .operations import OperationFailed, perform
from .profile import UIProfile
from .runner import StepFailed, log_in, same_value, shown_value

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
IS_CSS_JS = "(s) => { try { document.querySelector(s); return true; } catch (e) { return false; } }"
FAILING = ("MISSING", "INVALID", "NOT CSS", "HIDDEN", "DISABLED", "NOT TAKEN", "FAILED")


@dataclass
class Check:
    role: str
    selector: str
    status: str  # ok, absent, later, or one of FAILING
    matches: int | None = 0  # None: not a selector check (a step of open: or before:)
    note: str = ""
    page_has: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def any_choice(selector: str) -> str:
    """A choice field's selector ({value} in it) made to match any of its choices:
    `[value='{value}']` (or ^=, *=, $=, ~=, |=) becomes `[value]`, `:has-text('{value}')` is dropped."""
    selector = re.sub(r"""\[([^\]=~|^$*]+?)\s*[~|^$*]?=\s*(['"]?)\{value\}\2\]""", r"[\1]", selector)
    selector = re.sub(r""":has-text\((['"])\{value\}\1\)""", "", selector)
    return selector.replace("{value}", "none")  # another form: check the whole-image choice


def count(page: Page, selector: str) -> tuple[int | None, str]:
    """How many elements match, or (None, Playwright's reason) for a selector it cannot parse."""
    try:
        return page.locator(selector).count(), ""
    except PlaywrightError as exc:
        return None, str(exc).strip().splitlines()[0].split(": ", 1)[-1]


def check_selector(page: Page, role: str, selector: str, kind: str, absent_ok: str = "", probe: bool = True) -> Check:
    """One selector: ok (with its count), INVALID, NOT CSS (`probe`: the in-page probe matches
    it, so it must be plain CSS), MISSING (with what the page has), or `absent_ok` (a status for
    a selector allowed to match nothing yet)."""
    matches, reason = count(page, selector)
    if matches is None:
        return Check(role, selector, "INVALID", note=reason)
    if probe and not page.evaluate(IS_CSS_JS, selector):
        return Check(
            role, selector, "NOT CSS", matches, "the in-page probe needs plain CSS here (no :has-text, text=, >>)"
        )
    if matches:
        return Check(role, selector, "ok", matches)
    if absent_ok:
        return Check(role, selector, absent_ok)
    return Check(role, selector, "MISSING", page_has=page.evaluate(CANDIDATES_JS, kind))


def check_field(page: Page, name: str, selector: str) -> Check:
    """A field: present, visible, enabled, and a value filled in reads back (its own value, or a
    test prompt; choice fields are only looked for)."""
    if "{value}" in selector:
        return check_selector(page, f"field {name}", any_choice(selector), "field", probe=False)
    check = check_selector(page, f"field {name}", selector, "field", probe=False)
    if check.status != "ok":
        return check
    box = page.locator(selector).first
    if not box.is_visible():
        return Check(check.role, selector, "HIDDEN", check.matches, "open its panel with an open: or before: step")
    if not box.is_editable():
        return Check(check.role, selector, "DISABLED", check.matches, "turn off what disables it with an open: step")
    value = "imagejourney profile check" if name in ("prompt", "negative_prompt", "edit_prompt") else shown_value(box)
    box.fill(value)
    box.blur()
    if not same_value(shown := shown_value(box), value):
        return Check(check.role, selector, "NOT TAKEN", check.matches, f"filled {value!r}, it shows {shown!r}")
    return Check(check.role, selector, "ok", check.matches, f"reads back {shown[:30]!r}")


def check_profile(page: Page, base_url: str, profile: UIProfile, timeout_ms: int = 15_000) -> list[Check]:
    log_in(page, base_url, profile)
    url = base_url.rstrip("/") + profile.path
    try:
        page.goto(url)
    except PlaywrightError as exc:
        raise StepFailed(f"could not open {url}: {str(exc).splitlines()[0]}") from None
    try:  # a UI that builds itself after load (ComfyUI's took 2 s) is checked once it is ready
        page.wait_for_selector(profile.ready, state="attached", timeout=timeout_ms)
    except PlaywrightError:
        pass  # said below: the ready selector matches nothing, or is not a selector
    checks = [check_selector(page, "ready", profile.ready, "control", probe=False)]
    for operation in profile.open:
        checks.append(operate(page, "open", operation))
    for name, selector in profile.fields.items():
        parts = selector.items() if isinstance(selector, dict) else [(None, selector)]
        checks += [check_field(page, f"{name} {part}" if part else name, one) for part, one in parts]
    for action in profile.controls:
        if action != "export":
            checks += check_control(page, profile, action)
    checks.append(check_selector(page, "output", profile.output, "output"))
    for role, selector in (("preview image", profile.preview_image), ("final image", profile.final_image)):
        checks.append(check_selector(page, role, f"{profile.output} {selector}", "output", absent_ok="later"))
    for condition in profile.done:
        for key in ("selector", "hidden", "visible", "enabled", "disabled"):
            if key in condition:
                absent = "absent" if condition["kind"] in ("hidden", "visible") else ""
                checks.append(check_selector(page, f"done ({condition['kind']})", condition[key], "control", absent))
    if profile.error:
        checks.append(check_selector(page, "error", profile.error["selector"], "control"))
    job = (profile.server_timings or {}).get("job", {})
    if "selector" in job:
        checks.append(check_selector(page, "server_timings job", job["selector"], "control", "later", probe=False))
    if "export" in profile.controls:  # last: its steps may close a panel the checks above look in
        checks += [
            check if not check.failed else Check(check.role, check.selector, "later", check.matches, EXPORT_LATER)
            for check in check_control(page, profile, "export")
        ]
    return checks


# An export's menu or button often shows only once there is an image (ComfyUI's Download sits on
# Save Image's picture), which the walk above has not made: --act generate exports for real.
EXPORT_LATER = "not there before an image is made; --act generate exports after its generate"


def check_control(page: Page, profile: UIProfile, action: str) -> list[Check]:
    """The control's before: steps, done, then the control itself."""
    before = profile.before.get(action, ())
    checks = [operate(page, f"before {action}", operation) for operation in before]
    checks.append(check_selector(page, f"control {action}", profile.controls[action], "control"))
    if before:
        page.keyboard.press("Escape")  # close the menu the before: steps opened
    return checks


def operate(page: Page, where: str, operation) -> Check:
    try:
        acted = perform(page, operation, where)
    except OperationFailed as exc:
        return Check(f"{where} {operation.kind}", operation.target, "FAILED", None, str(exc))
    return Check(
        f"{where} {operation.kind}",
        operation.target,
        "ok" if acted else "absent",
        None,
        "done" if acted else "not shown: nothing to dismiss",
    )


NOTES = {"later": "appears with the first image", "absent": "absent now (fine: shown only while working)"}


def format_checks(checks: list[Check]) -> list[str]:
    lines = []
    for c in checks:
        found = (
            f"{c.matches} match{'es' if c.matches != 1 else ''}"
            if c.matches is not None and c.status in ("ok", "HIDDEN", "DISABLED", "NOT TAKEN")
            else ""
        )
        note = c.note or NOTES.get(c.status, "")
        line = f"  {c.status:9} {c.role:24} {c.selector:34} {found}"
        line += f"; {note}" if found and note else note
        if c.page_has:
            line += f"the page has: {', '.join(c.page_has)}"
        lines.append(line.rstrip())
    return lines


def act_generate(page: Page, base_url: str, profile: UIProfile, results_root, pack=None) -> tuple[list, object]:
    """One prompt and one generate, and an export when the profile has one, run as a journey
    would run them, into a run directory under `results_root`: (the failures, the run
    directory) for the caller to audit and describe. With a journey pack, its first prompt, its
    settings (size, steps, seed…) and its own prompt, generate and export steps (with their
    before:/after:); without one, the product's own settings."""
    from .pack import JourneyPack, Prompt, Step
    from .rundir import RunDirectory
    from .runner import JourneyRunner, install_probe

    if pack is None:
        settings, prompt, steps, timeout_s = {}, Prompt("check", "a lighthouse on a cliff at dusk", 1), None, 240.0
    else:
        generate_at = next(i for i, s in enumerate(pack.steps) if s.kind == "generate")
        settings, prompt, timeout_s = pack.settings, pack.prompts[0], pack.action_timeout_s
        steps = [s for s in pack.steps[: generate_at + 1] if s.kind in ("prompt", "generate")]
        steps += [s for s in pack.steps if s.kind == "export"][:1]
    steps = steps or [Step("prompt"), Step("generate")]
    if "export" in profile.controls and not any(s.kind == "export" for s in steps):
        steps.append(Step("export"))
    check = JourneyPack(
        name="profile-check",
        description="one generate and its export",
        cohort=[],
        settings=settings,
        prompts=[prompt],
        steps=steps,
        acceptance={"rule": "not_blank", "min_pixel_std": 0.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=timeout_s,
        source="imagejourney profile check --act generate" + (f" --journey {pack.name}" if pack else ""),
        raw={"name": "profile-check"},
    )
    run = RunDirectory.create(results_root, {"journey": {"name": check.name}, "config_hash": "check"})
    install_probe(page, profile.output, profile.final_image, profile.preview_image)
    failures = JourneyRunner(page, base_url=base_url, profile=profile, pack=check, prompt=prompt, run=run).run()
    return failures, run
