"""Steps around actions: untimed operations a UI needs before or after a timed action, or when
the page opens: dismiss a first-visit dialog, open a panel, hover to reveal a button, pick a
menu item, pan a node graph. A profile lists them under `open:` and on a control (`{control, before, after}`);
a journey step under `before:` / `after:`. Each is one mapping:

    - click: SELECTOR
    - hover: SELECTOR
    - drag: SELECTOR                  # press the left button, move `by: [DX, DY]` px, release; from
                                      # `at: [X, Y]` inside the element (default its centre)
    - press: KEY                      # on the page; `in: SELECTOR` presses it in that element
    - select: SELECTOR                # a menu item or option (clicked); `option: VALUE` for a <select>
    - check: SELECTOR                 # a checkbox or switch on (uncheck: off); visually hidden ones too
    - wait_for: SELECTOR              # `state: visible | hidden | attached | detached` (default visible)
    - dismiss_if_present: SELECTOR    # clicked if it shows within timeout_ms (default 2000), else nothing;
                                      # once shown, the click may take the usual 10000 (it may still animate in)

`timeout_ms` bounds any of them (default 10000). They are recorded in events.jsonl and never
counted in an action's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Position

from .yaml_reader import Reader, plain

KINDS = ("click", "hover", "drag", "press", "select", "check", "uncheck", "wait_for", "dismiss_if_present")
OPTIONS = {
    "drag": ("by", "at"),
    "press": ("in",),
    "select": ("option",),
    "wait_for": ("state",),
}  # (YAML reads a bare `on` as true)
WaitState = Literal["visible", "hidden", "attached", "detached"]  # Locator.wait_for's states
WAIT_STATES: tuple[WaitState, ...] = ("visible", "hidden", "attached", "detached")
ACT_TIMEOUT_MS = 10_000
DEFAULT_TIMEOUT_MS = {"dismiss_if_present": 2_000}  # how long to wait for it to show
DONE = {
    "click": "clicked",
    "hover": "hovered",
    "drag": "dragged",
    "press": "pressed in",
    "select": "selected",
    "check": "checked",
    "uncheck": "unchecked",
}


class OperationFailed(Exception):
    """One sentence naming the step, its selector and what went wrong."""


@dataclass(frozen=True)
class Operation:
    kind: str
    target: str  # a selector; for press, the key
    on: str | None = None  # press: the element to press it in
    option: str | None = None  # select: the <select>'s option
    state: WaitState = "visible"  # wait_for (read_operation checks it is one of WAIT_STATES)
    by: tuple[int, int] | None = None  # drag: how far, in CSS px
    at: tuple[int, int] | None = None  # drag: where it starts, from the element's top left
    timeout_ms: int = ACT_TIMEOUT_MS

    def describe(self) -> str:
        by = f" by {list(self.by)}" if self.by else ""
        return f"{self.kind} '{self.target}'" + (f" on '{self.on}'" if self.on else "") + by


def read_operations(r: Reader, mapping, key: str, what: str) -> tuple[Operation, ...]:
    """The list under `key` of `mapping` (absent: none), each checked with its line number."""
    items = r.get(mapping, key, list, what, [])
    return tuple(read_operation(r, item, f"{what} {key}[{i}]", mapping, key) for i, item in enumerate(items))


def read_operation(r: Reader, item, what: str, parent, key: str) -> Operation:
    if not isinstance(item, dict):
        raise r.error(parent, key, f"{what} must be a mapping such as {{click: SELECTOR}}; kinds: {', '.join(KINDS)}")
    kinds = [k for k in item if k in KINDS]
    if len(kinds) != 1:
        raise r.error(item, None, f"{what} must name exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    r.only(item, (kind, "timeout_ms", *OPTIONS.get(kind, ())), f"{what} ({kind})")
    state = r.get(item, "state", str, what, "visible")
    if state not in WAIT_STATES:
        raise r.error(item, "state", f"state in {what} must be one of {', '.join(WAIT_STATES)}")
    timeout = r.get(item, "timeout_ms", int, what, DEFAULT_TIMEOUT_MS.get(kind, ACT_TIMEOUT_MS))
    if timeout <= 0:
        raise r.error(item, "timeout_ms", f"timeout_ms in {what} must be a positive number of ms")
    return Operation(
        kind,
        r.get(item, kind, str, what),
        on=r.get(item, "in", str, what, None),
        option=plain(r.get(item, "option", (str, int, float), what, None)),
        state=state,
        timeout_ms=timeout,
        by=read_point(r, item, "by", what, required=kind == "drag"),
        at=read_point(r, item, "at", what),
    )


def read_point(r: Reader, item, key: str, what: str, required: bool = False) -> tuple[int, int] | None:
    """`[X, Y]` in CSS pixels, or None when absent and not required."""
    value = r.get(item, key, list, what, ... if required else None)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise r.error(item, key, f"{key} in {what} must be two whole numbers of pixels, such as [-400, 0]")
    return int(value[0]), int(value[1])


def perform(page: Page, operation: Operation, where: str) -> bool:
    """Do one operation; True when it acted (a dismiss_if_present whose target never showed
    did not). Raises OperationFailed with one sentence."""
    op = operation
    timeout_ms = op.timeout_ms
    try:
        if op.kind == "dismiss_if_present":
            try:
                page.locator(op.target).first.wait_for(state="visible", timeout=op.timeout_ms)
            except PlaywrightError:
                return False
            timeout_ms = max(op.timeout_ms, ACT_TIMEOUT_MS)
            page.locator(op.target).first.click(timeout=timeout_ms)
        elif op.kind == "click":
            page.locator(op.target).first.click(timeout=op.timeout_ms)
        elif op.kind == "hover":
            page.locator(op.target).first.hover(timeout=op.timeout_ms)
        elif op.kind == "drag":
            drag(page, op)
        elif op.kind == "press":
            if op.on:
                page.locator(op.on).first.press(op.target, timeout=op.timeout_ms)
            else:
                page.keyboard.press(op.target)
        elif op.kind == "select":
            item = page.locator(op.target).first
            if op.option is not None:
                item.select_option(str(op.option), timeout=op.timeout_ms)
            else:
                item.click(timeout=op.timeout_ms)
        elif op.kind in ("check", "uncheck"):
            # force: a switch drawn over a visually hidden checkbox is set as its label would set it
            getattr(page.locator(op.target).first, op.kind)(timeout=op.timeout_ms, force=True)
        elif op.kind == "wait_for":
            page.locator(op.target).first.wait_for(state=op.state, timeout=op.timeout_ms)
    except PlaywrightError as exc:
        raise OperationFailed(
            f"the {where} step {op.describe()} failed: {failure_reason(op, exc, timeout_ms)}"
        ) from None
    return True


def failure_reason(op: Operation, exc: PlaywrightError, timeout_ms: int) -> str:
    """Playwright's error in a few words: for a timeout, what could not be done and the last thing
    its call log says stood in the way ("element is not stable", "<div> intercepts pointer events")."""
    lines = [line.strip().lstrip("- ").strip() for line in str(exc).strip().splitlines()]
    if not lines:
        return type(exc).__name__
    if "Timeout" not in lines[0]:
        return lines[0].split(": ", 1)[-1]
    if op.kind == "wait_for":
        return f"it was not {op.state} within {timeout_ms} ms"
    if op.kind == "dismiss_if_present":
        reason = f"it showed but could not be clicked within {timeout_ms} ms"
    else:
        reason = f"nothing it matches could be {DONE[op.kind]} within {timeout_ms} ms"
    blockers = [line for line in lines if line.startswith("element is ") or "intercepts pointer events" in line]
    return reason + (f" ({blockers[-1]})" if blockers else "")


def drag(page: Page, op: Operation) -> None:
    """A left-button drag, as a person pans a canvas: the pointer is put on the element (where
    it receives events: Playwright's hover checks), pressed, moved in steps and released."""
    assert op.by is not None, "read_operation gives every drag its `by`"
    element = page.locator(op.target).first
    position: Position | None = {"x": op.at[0], "y": op.at[1]} if op.at else None
    element.hover(timeout=op.timeout_ms, position=position)
    box = element.bounding_box(timeout=op.timeout_ms)
    assert box is not None, "hover succeeded: the element has a box"
    x = box["x"] + (op.at[0] if op.at else box["width"] / 2)
    y = box["y"] + (op.at[1] if op.at else box["height"] / 2)
    page.mouse.down()
    page.mouse.move(x + op.by[0], y + op.by[1], steps=8)
    page.mouse.up()
