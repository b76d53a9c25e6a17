"""Recipes: YAML files mapped onto typed dataclasses, with dotted command-line overrides.

A recipe file names its task (`task: transfer`) and sets that task's keys. The task's `Config`
dataclass says which keys exist, their types and defaults; `build()` turns a mapping (from YAML
and from `key.sub=value` overrides) into a validated instance or raises ConfigError with a
one-line message that names the key and the nearest valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from xling.common.errors import ConfigError
from xling.common.io import read_text

ROOT = Path(__file__).resolve().parents[2]
RECIPES_DIR = ROOT / "recipes"


class Invalid(Exception):
    """Raised by a config's `check()` for a value that has the right type but is not allowed."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(kw_only=True)
class Recipe:
    """Keys every recipe has. Task configs extend it: `@dataclass(kw_only=True) class Config(Recipe)`."""

    task: str = ""  # the task this recipe runs (xling/tasks/, e.g. evaluate)
    description: str = ""  # one line saying what the recipe does (shown by --list and --help)
    out: str | None = None  # run folder; default runs/<recipe>[-<hash of overrides>]
    seed: int = 0  # the run's random seed (sampling, training, bootstrap resampling)

    def __post_init__(self) -> None:  # every task's seed, checked once here (a subclass's check() adds its own)
        from xling.common.checks import seed_problem

        if (problem := seed_problem(self.seed)) is not None:
            raise Invalid("seed", problem)


def section_check(section: Any, key: str) -> None:
    """Run a section's `check()` from its task's check, its keys named under `key` (`gen.temperature`). A section
    given in the recipe is checked as it is built; one left at its defaults only this way."""
    try:
        section.check()
    except Invalid as e:
        raise Invalid(f"{key}.{e.key}", e.message) from None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML forbids it;
    PyYAML would silently keep the last value)."""


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges keys: later keys override them
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the safe constructor reports it
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' is given twice (lines {first + 1} and {key_node.start_mark.line + 1}); "
                "keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str):
    """Parse YAML text safely; a key given twice in one mapping is a yaml.YAMLError."""
    return yaml.load(text, Loader=_StrictLoader)


class _Raw(str):
    """A value typed on the command line: parsed according to the key's type."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"null", "none", "~", ""}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if is_dataclass(tp):
        return "a section"
    return {str: "text", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _show(value: Any) -> str:
    text = repr(str(value)) if isinstance(value, _Raw) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _split_list(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def wrong() -> ConfigError:
        return ConfigError(f"recipe key '{key}': expected {_type_name(tp)}, got {_show(value)}")

    if tp is Any:
        return _plain(value)
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, _Raw) and value.strip().lower() in _NULL):
            if type(None) in args:
                return None
            raise wrong()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(e)
        raise wrong()
    if value is None:
        raise ConfigError(f"recipe key '{key}': expected {_type_name(tp)}, got null")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        near = get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(
            f"recipe key '{key}': {_show(value)} is not allowed{hint}; "
            f"choose one of: {', '.join(str(a) for a in args)}"
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise wrong()
    if tp is int:
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip().replace("_", ""))
            except ValueError:
                raise wrong() from None
            if number.is_integer():
                return int(number)
        raise wrong()
    if tp is float:
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip().replace("_", ""))
            except ValueError:
                raise wrong() from None
        raise wrong()
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise wrong()
    if origin in (list, tuple):
        item_tp = args[0] if args else Any
        if isinstance(value, _Raw):
            stripped = value.strip()
            if is_dataclass(item_tp) or typing.get_origin(item_tp) is dict:
                value = _parse_yaml_value(stripped, key)
            else:
                value = [_Raw(v) for v in _split_list(stripped)]
        elif isinstance(value, str):
            value = [v for v in _split_list(value)] if "," in value else [value]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise wrong()
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, _Raw):
            value = _parse_yaml_value(value, key)
        if not isinstance(value, dict):
            raise wrong()
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if is_dataclass(tp):
        if isinstance(value, _Raw):
            raise ConfigError(
                f"recipe key '{key}' is a section: set its keys as {key}.KEY=VALUE "
                f"(keys: {', '.join(f.name for f in fields(tp))})"
            )
        if not isinstance(value, dict):
            raise wrong()
        return build(tp, value, prefix=key + ".")
    raise ConfigError(f"recipe key '{key}': unsupported type {tp!r}")  # a bug in a Config class


def _plain(value: Any) -> Any:
    """A value of an untyped key (Any): text typed on the command line read as YAML ("3" -> 3, "[a,b]" -> a
    list); mappings and lists walked through. Typed keys read their text later, by their own type."""
    if isinstance(value, _Raw):
        try:
            return yaml.safe_load(str(value)) if str(value).strip() else None
        except yaml.YAMLError:
            return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_yaml_value(text: str, key: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        why = getattr(e, "problem", None) or e.__class__.__name__
        raise ConfigError(f"recipe key '{key}': cannot parse {text!r} ({why})") from None


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, sections expanded."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        keys.append(prefix + f.name)
        if is_dataclass(tp):
            keys.extend(all_keys(tp, prefix + f.name + "."))
    return keys


def _unknown_key(cls: type, prefix: str, name: str, root: type | None) -> ConfigError:
    here = [f.name for f in fields(cls)]
    full = prefix + name
    renamed = getattr(cls, "RENAMED_KEYS", {}).get(name)  # a key a recipe class has renamed: (new name, why)
    if renamed:
        new, why = renamed
        return ConfigError(f"recipe key '{full}' is now '{prefix}{new}' ({why}): write {prefix}{new}=... instead")
    candidates = all_keys(root, "") if root is not None else [prefix + k for k in here]
    near = get_close_matches(full, candidates, n=3, cutoff=0.6) or [
        prefix + k for k in get_close_matches(name, here, n=3, cutoff=0.5)
    ]
    hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
    where = f"under '{prefix[:-1]}'" if prefix else "at the top level"
    return ConfigError(f"unknown recipe key '{full}'; {hint}valid keys {where}: {', '.join(here)}")


def build(cls: type, data: dict, prefix: str = "", root: type | None = None) -> Any:
    """Build a `cls` instance from a mapping, checking every key and value."""
    root = root or (cls if not prefix else None)
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in fields(cls)}
    for name in data:
        if name not in names:
            raise _unknown_key(cls, prefix, str(name), root)
    kwargs = {}
    for name, f in names.items():
        key = prefix + name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], key)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"recipe key '{key}' is required: give it as {key}=VALUE")
    try:
        obj = cls(**kwargs)  # a section's __post_init__ may check its values too
        check = getattr(obj, "check", None)
        if callable(check):
            check()
    except Invalid as e:
        raise ConfigError(f"recipe key '{prefix}{e.key}': {e.message}") from None
    return obj


def parse_overrides(items: list[str]) -> dict:
    """['a.b=1', 'c=x,y'] -> {'a': {'b': _Raw('1')}, 'c': _Raw('x,y')}."""
    tree: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"cannot read '{item}': overrides are written key=value (e.g. train.lr=1e-6)")
        key, value = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"cannot read '{item}': the key is empty or has an empty part")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}' conflicts with an earlier '{part}=...'")
            node = child
        node[parts[-1]] = _Raw(value)
    return tree


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def shipped_path(path: str | Path) -> Path:
    """A relative path as given, or, where it does not exist here, the file shipped in the repository.

    Recipes name example files relative to the repository root (e.g. recipes/examples/...); this
    lets them run from any working folder.
    """
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    shipped = ROOT / path
    return shipped if shipped.exists() else path


def available_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def recipe_path(name: str) -> Path:
    """A recipe name under recipes/ (no .yaml) or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")) or "/" in name or Path(name).is_file():
        path = Path(name)
        if path.is_dir():
            raise ConfigError(f"recipe file '{name}' is a folder, not a file; give the path of a YAML recipe")
        if not path.is_file():
            raise ConfigError(f"recipe file '{name}' does not exist")
        return path
    recipes = available_recipes()
    if name in recipes:
        return recipes[name]
    near = get_close_matches(name, list(recipes), n=3)
    hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
    raise ConfigError(f"unknown recipe '{name}'; {hint}run 'python run.py --list' to see them all")


def read_recipe_file(path: Path) -> dict:
    try:
        data = load_yaml(read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"recipe {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        raise ConfigError(f"recipe {path} is empty; it needs at least 'task: NAME'")
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping of keys to values, not {type(data).__name__}")
    return data


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True, width=100)


def _declared_comments(klass: type) -> dict[str, str]:
    """name -> the trailing `#` comment of each field a class declares in its own body (with the comment-only
    lines that continue it), read from its source; {} when the source cannot be read."""
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    out: dict[str, list[str]] = {}
    level, depth = 0, 0  # indentation level (1: the class body) and open brackets
    current: str | None = None  # the field whose declaration (or continuation comments) is being read
    line_start = True
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return {}
    for i, tok in enumerate(tokens):
        kind, text = tok.type, tok.string
        if kind == tokenize.INDENT:
            level += 1
            continue
        if kind == tokenize.DEDENT:
            level -= 1
            continue
        if kind == tokenize.COMMENT:
            if current is not None and (depth or not line_start or out.get(current)):
                out.setdefault(current, []).append(text.lstrip("#").strip())
            continue
        if kind in (tokenize.NL, tokenize.NEWLINE):
            if kind == tokenize.NEWLINE:
                line_start = True
            continue
        if kind == tokenize.OP and text in "([{":
            depth += 1
        elif kind == tokenize.OP and text in ")]}":
            depth -= 1
        if line_start and depth == 0:
            line_start = False
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if level == 1 and kind == tokenize.NAME and nxt is not None and nxt.string == ":":
                current = text
                out.setdefault(current, [])
            else:
                current = None  # a docstring, a method, a class variable: not a field
        elif line_start:
            line_start = False
    return {name: " ".join(parts) for name, parts in out.items() if parts}


def field_meanings(cls: type) -> dict[str, str]:
    """Each field's one-line meaning: its trailing `#` comment where it is declared, or where a base class
    declares it (a subclass that only changes a default keeps the base's meaning)."""
    meanings: dict[str, str] = {}
    names = [f.name for f in fields(cls)]
    for klass in cls.__mro__:
        if not is_dataclass(klass):
            continue
        found = _declared_comments(klass)
        for name in names:
            if name not in meanings and found.get(name):
                meanings[name] = found[name]
    return meanings


def describe_keys(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) rows for `--help` on a recipe; a section's keys are listed under it."""
    rows = []
    hints = typing.get_type_hints(cls)
    meanings = field_meanings(cls)
    for f in fields(cls):
        tp = hints[f.name]
        if is_dataclass(tp):
            rows.extend(describe_keys(tp, prefix + f.name + "."))
            continue
        if f.default is not MISSING:
            default = repr(f.default)
        elif f.default_factory is not MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((prefix + f.name, _type_name(tp), default, meanings.get(f.name, "")))
    return rows


__all__ = [
    "ConfigError", "Invalid", "Recipe", "build", "parse_overrides", "merge", "recipe_path",
    "available_recipes", "read_recipe_file", "dump_yaml", "to_dict", "describe_keys", "field_meanings", "all_keys",
    "field", "dataclass", "section_check",
]
