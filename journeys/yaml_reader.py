"""YAML files read with line numbers: every problem is a `ConfigError`, one sentence naming the
file, the line and the field, and saying what to write instead. Unknown fields are errors, not
ignored, so a typo (`stesp:`) cannot silently change what a run measures. Packs (pack.py) and
UI profiles (profile.py) are read with it."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


class ConfigError(Exception):
    """One sentence: which file, which line and field, what is wrong and how to fix it."""


class Located(dict):
    """A mapping read from YAML that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict


class LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        mapping = Located(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {key.value: key.start_mark.line + 1 for key, _ in node.value if hasattr(key, "value")}
        return mapping


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, LineLoader.construct_mapping)


class Reader:
    """Reads fields of one YAML file, raising ConfigError that name file, line and field."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = yaml.load(path.read_text(), Loader=LineLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        if not isinstance(self.data, dict):
            raise ConfigError(f"{path}: the file must hold a mapping of fields (name: …) at the top level")

    def error(self, mapping, key: str | None, message: str) -> ConfigError:
        line = getattr(mapping, "key_lines", {}).get(key) or getattr(mapping, "line", None)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {message}")

    def only(self, mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                raise self.error(mapping, key, f"unknown field '{key}' in {what}; allowed: {', '.join(allowed)}")

    def get(self, mapping, key: str, kind, what: str, default=...):
        if key not in mapping or mapping[key] is None:
            if default is ...:
                raise self.error(mapping, None, f"the field '{key}' is missing from {what}")
            return default
        value = mapping[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(mapping, key, f"the field '{key}' in {what} must be a {names}, not {type(value).__name__}")
        return value


def find_yaml(name_or_path: str, builtin_dir: Path, kind: str, unknown: str) -> Path:
    """A YAML path as given, or a built-in by name; `unknown` is the sentence for a bad name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigError(f"{kind} file {path} not found")
        return path
    path = builtin_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in builtin_dir.glob("*.yaml")))
        raise ConfigError(unknown.format(name=name_or_path, known=known))
    return path


def plain(value):
    """Located dicts back to plain ones (for JSON and hashing)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
