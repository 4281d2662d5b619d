"""Read a YAML case file safely: limits, alias bombs, duplicate keys, line numbers.

Case files are untrusted input. PyYAML's ``SafeLoader`` (no Python tags)
reads at most ``MAX_FILE_BYTES`` of a regular file; before anything is
constructed, the composed node graph is measured with its aliases expanded,
so an alias bomb or a recursive alias is refused instead of expanding into
billions of nodes, and nesting deeper than ``MAX_YAML_DEPTH`` is refused.
Mappings and lists remember their line numbers for error messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import CaseFileError
from .characters import BIDI_HINT, BIDI_PROBLEM, describe, first_bidi_control

MAX_FILE_BYTES = 1 << 20          # 1 MiB per case file
# A 1 MiB file holds at most ~500k plain nodes ("1,"), so a million nodes
# after alias expansion is only reached by a file that multiplies itself.
MAX_YAML_NODES = 1_000_000
# A case sits four levels down (file, cases, case, inputs) and a literal has
# at most 8 dims; deeper documents are refused before the recursive steps
# (construction, schema validation) can exhaust Python's stack.
MAX_YAML_DEPTH = 32


class _Map(dict):
    line: int = 0
    key_lines: dict
    problems: list = []


class _List(list):
    line: int = 0


# libyaml's parser where PyYAML was built with it (the pure-Python one is ~4x slower); same safe constructor
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SAFE_LOADER):
    """SafeLoader that records line numbers, refuses duplicate keys and measures the document first."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that is recursive, too deep, or too large once its aliases are expanded.

    The composer shares an aliased node rather than copying it, so the graph
    is small even when its expansion is astronomical; sizes are summed over
    the graph (memoised per node), never by expanding it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in children), MAX_YAML_NODES + 1)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_YAML_DEPTH:
                raise CaseFileError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels",
                                    line=node.start_mark.line + 1,
                                    hint="A case needs far less; check for runaway brackets or aliases.")
            if size[key] > MAX_YAML_NODES:
                raise CaseFileError(f"the YAML expands to over {MAX_YAML_NODES} values once its aliases "
                                    f"(*name) are expanded", line=node.start_mark.line + 1,
                                    hint="This looks like an alias bomb; write the values out or use fewer aliases.")
            continue
        if key in size:
            continue
        if key in on_path:
            raise CaseFileError("a YAML alias refers to a node that contains it (a recursive alias)",
                                line=node.start_mark.line + 1, hint="Remove the alias from inside its own anchor.")
        on_path.add(key)
        stack.append((node, True))
        if len(on_path) > MAX_YAML_DEPTH:
            raise CaseFileError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels",
                                line=node.start_mark.line + 1,
                                hint="A case needs far less; check for runaway brackets or aliases.")
        stack.extend((c, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    """A mapping that remembers its lines. A key that is not a name, or a repeated key, does not abort the
    file: it is recorded in ``problems`` (the key skipped) so that only the case holding it is refused."""
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines, out.problems = node.start_mark.line + 1, {}, []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            # YAML 1.1 reads `on:`, `no:` or `1:` as a bool or a number; every key of the format is a name
            out.problems.append(CaseFileError(f"a mapping key must be a name, not the {type(key).__name__} {key!r}",
                                              line=key_node.start_mark.line + 1,
                                              hint="Quote the key if it is meant as a name, e.g. 'on': ..."))
            continue
        if key in out:
            out.problems.append(CaseFileError(f"duplicate key '{key}' (first at line {out.key_lines[key]})",
                                              line=key_node.start_mark.line + 1,
                                              hint="Remove one of them; YAML would silently keep only the last."))
            continue
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def key_problem(value: Any, skip: Any = None) -> CaseFileError | None:
    """The first key problem :func:`_mapping` recorded anywhere inside ``value`` (not inside ``skip``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if item is skip:
            continue
        if isinstance(item, dict):
            if getattr(item, "problems", None):
                return item.problems[0]
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


# YAML 1.1 reads `1e-4` (no dot) as a string; people mean a number. Copy the
# resolver table first: add_implicit_resolver would append to SafeLoader's lists.
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def read_yaml(path: Path) -> Any:
    """Parse one file with the safe, line-tracking loader."""
    try:
        if not path.is_file():
            raise CaseFileError("not a regular file", file=str(path),
                                hint="Give case files (.yaml) or folders that hold them.")
        # stat() says 0 for /dev/zero and pipes; read one byte past the limit instead of trusting it
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise CaseFileError(f"file is over the {MAX_FILE_BYTES}-byte limit", file=str(path),
                                hint="Split it into several case files.")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFileError(f"the file is not UTF-8 text (byte {exc.start})", file=str(path),
                            hint="Save it as UTF-8.") from None
    except OSError as exc:
        raise CaseFileError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    if (bidi := first_bidi_control(text)) is not None:
        line, col, char = bidi
        raise CaseFileError(BIDI_PROBLEM.format(what=describe(char), line=line, col=col), file=str(path),
                            line=line, hint=BIDI_HINT)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except CaseFileError as exc:
        raise exc.located(file=str(path)) from None
    except yaml.reader.ReaderError as exc:   # a character YAML does not allow (control codes, say)
        line = text.count("\n", 0, exc.position) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        code = f" (U+{ord(char):04X})" if len(char) == 1 else ""
        raise CaseFileError(f"invalid YAML: the character {char!r}{code} is not allowed in a YAML file",
                            file=str(path), line=line, hint="Remove it, or write it as an escape in a quoted string.") from None
    except yaml.YAMLError as exc:
        line = _yaml_line(exc, text)
        raise CaseFileError(f"invalid YAML: {_yaml_problem(exc, line)}", file=str(path), line=line,
                            hint="Check the indentation and quoting near that line.") from None
    except RecursionError:
        raise CaseFileError("the YAML nests too deeply", file=str(path),
                            hint="A case needs far less; check for runaway brackets.") from None
    except Exception as exc:
        # PyYAML's constructors raise plain ValueError, IndexError, AttributeError... for a value that
        # does not fit its explicit tag (`!!float ''`, `!!timestamp 2001-12-14x`)
        raise CaseFileError(f"invalid YAML: a value does not fit its tag ({type(exc).__name__}: {exc})",
                            file=str(path), hint="Drop the !!tag, or write a value of that type.") from None

def _yaml_problem(exc: yaml.YAMLError, line: int | None) -> str:
    """PyYAML's context and problem in one line, and where the unfinished construct began if not on ``line``."""
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    text = " ".join(" ".join(str(p) for p in (context, problem) if p).split()) or " ".join(str(exc).split())
    start = getattr(exc, "context_mark", None)
    what = re.match(r"while (?:parsing|scanning) (an? )?(.+)", str(context or ""))
    if what and start is not None and start.line + 1 != line:
        text += f"; the {what.group(2)} began at line {start.line + 1}"
    return text


def _yaml_line(exc: yaml.YAMLError, text: str) -> int | None:
    """The problem's line, never past the file's last line (libyaml puts the end of the stream after it)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    last = max(1, len(text.splitlines()))
    return min(mark.line + 1, last)


def _plain(value):
    """Strip the line-tracking containers (nested lists/dicts → plain Python)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
