"""UI profiles: how to operate one product's UI (journeys/profiles/), read from YAML into a
plain dataclass: its fields, controls, output region, done conditions, login and server times."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import jmespath
from jmespath.exceptions import JMESPathError

from .operations import Operation, read_operations
from .pack import ACTIONS, SETTINGS, JourneyPack
from .product_api import CLOCKS, TIME_KEYS
from .yaml_reader import ConfigError, Reader, find_yaml, plain

PROFILES_DIR = Path(__file__).parent / "profiles"


class JobSpec(TypedDict, total=False):
    """Where the job id is: in the JSON answer to a request (request, id: JMESPath) or shown
    in the page (selector, pattern: a regular expression whose group 1 is the id)."""

    request: str
    id: str
    selector: str
    pattern: str


class SocketRule(TypedDict):
    url: str  # part of the websocket's URL
    contains: str  # text a frame for the moment holds


class ServerTimings(TypedDict, total=False):
    """A profile's `server_timings:` as read_server_timings reads it: job and url are
    always there, the rest for a product's own API."""

    job: JobSpec
    url: str  # the job's URL, with {job}
    times: dict[str, str]  # a moment (TIME_KEYS' keys) → JMESPath to its time
    clock: str  # one of CLOCKS
    seed: str  # JMESPath to the seed that ran
    websocket: dict[str, SocketRule]  # a moment → the frames that tell it


@dataclass(frozen=True)
class UIProfile:
    name: str
    path: str
    ready: str
    fields: dict
    controls: dict
    output: str
    final_image: str
    preview_image: str
    done: list[dict]
    error: dict | None
    login: dict | None
    server_timings: ServerTimings | None
    paint: str
    source: str
    raw: dict = field(repr=False)
    keep_query: tuple[str, ...] = ()  # query parameter names whose values recorded URLs may keep
    open: tuple[Operation, ...] = ()  # steps when the page opens: a first-visit dialog, a panel
    before: dict = field(default_factory=dict)  # action → steps before its control is clicked
    after: dict = field(default_factory=dict)  # action → steps after it is done
    about: tuple = ()  # where the product's API tells its version, model and device
    cancel: str | None = None  # a control that cancels a running job: how the runner recovers from a stall


PROFILE_FIELDS = (
    "name",
    "path",
    "ready",
    "open",
    "fields",
    "controls",
    "output",
    "final_image",
    "preview_image",
    "done",
    "error",
    "cancel",
    "login",
    "server_timings",
    "about",
    "paint",
    "keep_query",
)
PAINT_METHODS = ("auto", "element-timing", "draw-calls", "screencast")
PROFILE_INPUTS = ("prompt", "negative_prompt", "seed", "edit_prompt", "strength", "mask", *SETTINGS)
DONE_KINDS = {
    "text": ("selector", "text_matches"),  # an element's text matches (and changed since the click)
    "hidden": ("hidden",),  # an element (a spinner) is hidden or gone
    "visible": ("visible",),  # an element appears
    "enabled": ("enabled",),  # a control is disabled after the click, then enabled again
    "disabled": ("disabled",),  # a control is enabled after the click (Cancel), then disabled again
    "output_stable_ms": ("output_stable_ms",),  # no new image painted in the output for N ms
}
LOGIN_FIELDS = ("storage_state", "url", "fill", "submit", "success")


def load_profile(name_or_path: str) -> UIProfile:
    r = Reader(
        find_yaml(
            name_or_path,
            PROFILES_DIR,
            "UI profile",
            "unknown UI profile '{name}'; built-in profiles: {known} (or pass a YAML path)",
        )
    )
    data = r.data
    r.only(data, PROFILE_FIELDS, "the UI profile")
    fields = read_fields(r, data)
    controls = r.get(data, "controls", dict, "the UI profile")
    r.only(controls, ACTIONS, "controls")
    if "generate" not in controls:
        raise r.error(controls, None, "controls must name the generate control: generate: SELECTOR")
    before, after = {}, {}
    for action, control in list(controls.items()):
        if isinstance(control, dict):  # {control: SELECTOR, before: [...], after: [...]}
            what = f"controls.{action}"
            r.only(control, ("control", "before", "after"), what)
            before[action] = read_operations(r, control, "before", what)
            after[action] = read_operations(r, control, "after", what)
            controls[action] = r.get(control, "control", str, what)
        elif not isinstance(control, str):
            raise r.error(
                controls,
                action,
                f"controls.{action} must be a selector, or a mapping {{control: SELECTOR, "
                "before: [...], after: [...]}}",
            )
    done = r.get(data, "done", (dict, list), "the UI profile")
    conditions = [read_condition(r, c, "done") for c in (done if isinstance(done, list) else [done])]
    error = r.get(data, "error", dict, "the UI profile", None)
    if error is not None:
        r.only(error, DONE_KINDS["text"], "error")
        r.get(error, "selector", str, "error")
        r.get(error, "text_matches", str, "error")
    return UIProfile(
        name=r.get(data, "name", str, "the UI profile"),
        path=r.get(data, "path", str, "the UI profile", "/"),
        ready=r.get(data, "ready", str, "the UI profile"),
        fields=plain(fields),
        controls=plain(controls),
        output=r.get(data, "output", str, "the UI profile"),
        final_image=r.get(data, "final_image", str, "the UI profile", "img"),
        preview_image=r.get(data, "preview_image", str, "the UI profile", "img"),
        done=conditions,
        error=plain(error),
        login=read_login(r, data),
        server_timings=read_server_timings(r, data),
        paint=read_paint(r, data),
        source=str(r.path),
        raw=plain(data),
        keep_query=read_keep_query(r, data),
        open=read_operations(r, data, "open", "the UI profile"),
        before=before,
        after=after,
        about=read_about(r, data),
        cancel=r.get(data, "cancel", str, "the UI profile", None),
    )


def read_fields(r: Reader, data) -> dict:
    """`fields:` each a selector; `size` may be {width: SELECTOR, height: SELECTOR} for a UI
    with two boxes (one selector fills the one it matches, and the other keeps its value)."""
    fields = r.get(data, "fields", dict, "the UI profile")
    r.only(fields, PROFILE_INPUTS, "fields")
    if "prompt" not in fields:
        raise r.error(fields, None, "fields must name the prompt box: prompt: SELECTOR")
    for name, selector in fields.items():
        if name == "size" and isinstance(selector, dict):
            r.only(selector, ("width", "height"), "fields.size")
            if set(selector) != {"width", "height"} or not all(isinstance(v, str) for v in selector.values()):
                raise r.error(fields, name, "fields.size must be a selector or {width: SELECTOR, height: SELECTOR}")
        elif not isinstance(selector, str):
            kind = "a list" if isinstance(selector, list) else type(selector).__name__
            raise r.error(
                fields,
                name,
                f"fields.{name} must be one selector (a string), not {kind}; steps such as "
                "opening a panel first go under open: or a control's before:",
            )
    return fields


def read_condition(r: Reader, condition, what: str) -> dict:
    if not isinstance(condition, dict):
        raise r.error(r.data, "done", f"each {what} condition must be a mapping")
    for kind, keys in DONE_KINDS.items():
        if keys[0] in condition:
            r.only(condition, keys, f"{what} ({kind})")
            for key in keys:
                r.get(condition, key, int if key == "output_stable_ms" else str, what)
            return {"kind": kind, **plain(condition)}
    raise r.error(
        condition,
        None,
        f"a {what} condition needs one of: selector + text_matches, hidden, visible, enabled, "
        "disabled, output_stable_ms",
    )


def read_server_timings(r: Reader, data) -> ServerTimings | None:
    """Where the server tells its own times: the job id (shown in the page, or in the JSON answer
    to the request the click sent), the job's URL, and (for a product's own API) JMESPath to each
    time, its clock, the seed that ran, and websocket messages such as the first progress image.
    The old form `{job_selector, job_pattern, url}` reads the reference app's own keys."""
    timings = r.get(data, "server_timings", dict, "the UI profile", None)
    if timings is None:
        return None
    what = "server_timings"
    spec: ServerTimings
    if "job_selector" in timings:  # the old form
        r.only(timings, ("job_selector", "job_pattern", "url"), what)
        spec = {
            "job": {
                "selector": r.get(timings, "job_selector", str, what),
                "pattern": r.get(timings, "job_pattern", str, what),
            }
        }
    else:
        r.only(timings, ("job", "url", "times", "clock", "seed", "websocket"), what)
        job = r.get(timings, "job", dict, what)
        if "request" in job:
            r.only(job, ("request", "id"), f"{what}.job")
            spec = {
                "job": {
                    "request": r.get(job, "request", str, f"{what}.job"),
                    "id": jmespath_of(r, job, "id", f"{what}.job"),
                }
            }
        else:
            r.only(job, ("selector", "pattern"), f"{what}.job")
            spec = {
                "job": {
                    "selector": r.get(job, "selector", str, f"{what}.job"),
                    "pattern": r.get(job, "pattern", str, f"{what}.job"),
                }
            }
        times = r.get(timings, "times", dict, what, None)
        if times is not None:
            r.only(times, tuple(TIME_KEYS), f"{what}.times")
            spec["times"] = {key: jmespath_of(r, times, key, f"{what}.times") for key in times}
        spec["clock"] = r.get(timings, "clock", str, what, "epoch_ms")
        if spec["clock"] not in CLOCKS:
            raise r.error(timings, "clock", f"server_timings clock must be one of {', '.join(CLOCKS)}")
        if "seed" in timings:
            spec["seed"] = jmespath_of(r, timings, "seed", what)
        sockets = r.get(timings, "websocket", dict, what, {})
        r.only(sockets, ("first_preview",), f"{what}.websocket")
        for moment, rule in sockets.items():
            if not isinstance(rule, dict):
                raise r.error(sockets, moment, f"{what}.websocket.{moment} must be {{url: PART, contains: TEXT}}")
            r.only(rule, ("url", "contains"), f"{what}.websocket.{moment}")
            spec.setdefault("websocket", {})[moment] = {
                "url": r.get(rule, "url", str, what),
                "contains": r.get(rule, "contains", str, what),
            }
    spec["url"] = r.get(timings, "url", str, what)
    if "{job}" not in spec["url"]:
        raise r.error(timings, "url", "server_timings url must contain {job}, e.g. /imagejourney/jobs/{job}")
    return spec


def jmespath_of(r: Reader, mapping, key: str, what: str) -> str:
    """A JMESPath expression, checked when the profile is read."""
    expression = r.get(mapping, key, str, what)
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise r.error(mapping, key, f"{what}.{key} is not a JMESPath expression ({str(exc).splitlines()[0]})") from None
    return expression


def read_about(r: Reader, data) -> tuple[dict, ...]:
    """`about:` where the product tells its version, model and device: a list of {url, version,
    model, device}, each value JMESPath into that URL's JSON answer."""
    items = r.get(data, "about", list, "the UI profile", [])
    about = []
    for i, item in enumerate(items):
        what = f"about[{i}]"
        if not isinstance(item, dict):
            raise r.error(data, "about", f"{what} must be a mapping {{url: /path, version: JMESPATH}}")
        r.only(item, ("url", "version", "model", "device"), what)
        found = {"url": r.get(item, "url", str, what)}
        found.update({key: jmespath_of(r, item, key, what) for key in ("version", "model", "device") if key in item})
        about.append(found)
    return tuple(about)


def read_keep_query(r: Reader, data) -> tuple[str, ...]:
    """Query parameters harmless enough to keep in recorded URLs (`keep_query: [mode, lang]`);
    every other query value is redacted."""
    names = r.get(data, "keep_query", list, "the UI profile", [])
    if not all(isinstance(name, str) and name for name in names):
        raise r.error(data, "keep_query", "keep_query must be a list of query parameter names, e.g. [mode]")
    return tuple(names)


def read_paint(r: Reader, data) -> str:
    """How paint time is read: Element Timing on <img>, screencast frames (canvas UIs), or
    auto (Element Timing, screencast when the output region holds a canvas and no image)."""
    paint = r.get(data, "paint", str, "the UI profile", "auto")
    if paint not in PAINT_METHODS:
        raise r.error(data, "paint", f"paint must be one of {', '.join(PAINT_METHODS)}")
    return paint


def read_login(r: Reader, data) -> dict | None:
    login = r.get(data, "login", dict, "the UI profile", None)
    if login is None:
        return None
    r.only(login, LOGIN_FIELDS, "login")
    if "storage_state" in login:
        r.get(login, "storage_state", str, "login")
        return plain(login)
    fill = r.get(login, "fill", dict, "login")
    for selector, source in fill.items():
        if not (isinstance(source, str) and source.startswith("$")):
            raise r.error(
                fill, selector, "login values must name an environment variable ($VAR), never the secret itself"
            )
    r.get(login, "submit", str, "login")
    r.get(login, "success", str, "login")
    return plain(login)


def check_compatible(pack: JourneyPack, profile: UIProfile) -> None:
    """Every step of the pack must be something the profile can operate."""
    needed = {s.kind for s in pack.steps} & set(ACTIONS)
    for action in sorted(needed - set(profile.controls)):
        raise ConfigError(
            f"the journey '{pack.name}' has {action} steps but the UI profile '{profile.name}' ({profile.source}) "
            f"names no {action} control; add controls: {{{action}: SELECTOR}} or drop the step"
        )
    if any(s.kind == "repeat" for s in pack.steps) and "seed" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has repeat steps (the same seed again) but the UI profile '{profile.name}' "
            "names no seed field; add fields: {seed: SELECTOR} or drop the step"
        )
    if "edit" in needed and "edit_prompt" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has edit steps but the UI profile '{profile.name}' names no edit_prompt field"
        )
    if any(s.mask for s in pack.steps) and "mask" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has edit steps with a mask but the UI profile '{profile.name}' names no mask "
            "field; add fields: {mask: SELECTOR} (with {value} where the region's name goes)"
        )
