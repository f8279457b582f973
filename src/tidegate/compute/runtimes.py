"""Runtimes: which local interpreter runs an algorithm's container.

An Ocean algorithm names a Docker container (``image``, ``tag``, ``entrypoint`` such as
``python $ALGO``). The local engine runs no Docker: a table of rules maps image and tag
to a :class:`Runtime` (an interpreter on this machine), and the entrypoint's first word
must be one of the runtime's programs. Anything else is refused *before* a job starts
with :class:`UnsupportedImageError` (HTTP 400, code ``unsupported_image``).

Default table (:func:`default_rules`): image ``python`` (any tag) and
``oceanprotocol/algo_dockers`` with a tag starting ``python`` run on the system
``/usr/bin/python3`` (else this process's base interpreter); image ``node`` (any tag)
and ``oceanprotocol/algo_dockers`` tags starting ``node`` run on ``node`` from PATH
(only when it is installed). ``TIDEGATE_COMPUTE_RUNTIMES`` replaces the table.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tidegate.errors import BadRequestError, ConfigurationError

__all__ = [
    "ALGORITHM_PATH",
    "Runtime",
    "RuntimeRule",
    "UnsupportedImageError",
    "build_runtime_rules",
    "default_rules",
    "entrypoint_argv",
    "normalise_image",
    "resolve_runtime",
]

#: Where the algorithm is inside the sandbox (``$ALGO``).
ALGORITHM_PATH: Final = "/data/transformations/algorithm"

# Directories every sandbox already mounts read-only: a runtime under them needs no
# extra bind. Anything else (a pyenv, an nvm install) is bound read-only by its prefix.
_SYSTEM_PREFIXES: Final = ("/usr/", "/bin/", "/lib/", "/lib64/")
_REGISTRY_PREFIXES: Final = ("docker.io/", "index.docker.io/", "registry.hub.docker.com/")
_ALGO_TOKENS: Final = ("${ALGO}", "$ALGO")


class UnsupportedImageError(BadRequestError):
    """The algorithm's container cannot be run by this engine (image, tag or entrypoint)."""

    code = "unsupported_image"


@dataclass(frozen=True)
class Runtime:
    """A local interpreter standing in for a container image.

    ``programs`` are glob patterns for the entrypoint's first word (``python3*``);
    ``paths`` are extra host directories the sandbox binds read-only so the
    interpreter can run (its installation prefix when outside ``/usr``); ``env`` is
    added to the algorithm's environment.
    """

    name: str
    executable: str
    programs: tuple[str, ...]
    paths: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def accepts(self, program: str) -> bool:
        """True if an entrypoint starting with ``program`` may run on this runtime."""
        base = program.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(base, pattern) for pattern in self.programs)

    def argv(self, entrypoint: str, algorithm_path: str = ALGORITHM_PATH) -> list[str]:
        """The command for ``entrypoint``: its first word becomes :attr:`executable`.

        ``$ALGO`` / ``${ALGO}`` are replaced by ``algorithm_path``; no shell is involved,
        so other ``$`` text reaches the interpreter unchanged. Raises
        :class:`UnsupportedImageError` for an entrypoint this runtime does not accept.
        """
        words = _entrypoint_words(entrypoint)
        if not self.accepts(words[0]):
            raise UnsupportedImageError(
                f"The entrypoint must start with one of {', '.join(self.programs)} "
                f"for the {self.name} runtime."
            )
        args = [_substitute(word, algorithm_path) for word in words[1:]]
        return [self.executable, *args]


@dataclass(frozen=True)
class RuntimeRule:
    """``image`` (normalised, exact) and ``tag`` (glob) select ``runtime``."""

    image: str
    tag: str
    runtime: Runtime

    def matches(self, image: str, tag: str) -> bool:
        return image == self.image and fnmatch.fnmatchcase(tag, self.tag)

    def describe(self) -> str:
        return self.image if self.tag == "*" else f"{self.image}:{self.tag}"


def _entrypoint_words(entrypoint: object) -> list[str]:
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise UnsupportedImageError("The algorithm's container has no entrypoint.")
    try:
        words = shlex.split(entrypoint)
    except ValueError:
        raise UnsupportedImageError("The algorithm's entrypoint cannot be parsed.") from None
    if not words:
        raise UnsupportedImageError("The algorithm's container has no entrypoint.")
    return words


def entrypoint_argv(entrypoint: object, algorithm_path: str = ALGORITHM_PATH) -> list[str]:
    """The entrypoint's words with ``$ALGO`` / ``${ALGO}`` replaced (no shell, as in
    :meth:`Runtime.argv`); 400 ``unsupported_image`` if empty or unparsable."""
    return [_substitute(word, algorithm_path) for word in _entrypoint_words(entrypoint)]


def _substitute(word: str, algorithm_path: str) -> str:
    for token in _ALGO_TOKENS:
        word = word.replace(token, algorithm_path)
    return word


def normalise_image(image: object, tag: object) -> tuple[str, str]:
    """``(image, tag)`` compared by the rules: lowercase, no registry, no digest.

    ``docker.io/library/python`` → ``python``; an image ``python:3.11`` with no tag
    gives tag ``3.11``; a missing tag is ``latest``.
    """
    name = image.strip().lower() if isinstance(image, str) else ""
    label = tag.strip() if isinstance(tag, str) else ""
    name = name.split("@", 1)[0]
    for prefix in _REGISTRY_PREFIXES:
        name = name.removeprefix(prefix)
    name = name.removeprefix("library/")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, embedded = name.rpartition(":")
        label = label or embedded
    return name, label or "latest"


def _under_system(path: str) -> bool:
    return path.startswith(_SYSTEM_PREFIXES)


def _install_prefix(executable: str) -> tuple[str, ...]:
    """The read-only binds an interpreter outside the system dirs needs (its prefix)."""
    real = os.path.realpath(executable)
    if _under_system(real):
        return ()
    parent = Path(real).parent
    prefix = parent.parent if parent.name == "bin" else parent
    return (str(prefix),)


def python_runtime() -> Runtime:
    """The system ``/usr/bin/python3``, else the base interpreter of this process.

    The system interpreter is preferred: it carries no provider code or virtualenv
    (the provider's venv holds its dependencies and must not be needed by jobs).
    """
    env = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    programs = ("python", "python3", "python3.*")
    system = "/usr/bin/python3"
    if os.access(system, os.X_OK):
        return Runtime("python", system, programs, (), env)
    base = str(getattr(sys, "_base_executable", "") or sys.executable)
    paths = () if _under_system(sys.base_prefix + "/") else (sys.base_prefix,)
    return Runtime("python", os.path.realpath(base), programs, paths, env)


def node_runtime() -> Runtime | None:
    """``node`` from PATH, or None when it is not installed."""
    found = shutil.which("node")
    if found is None:
        return None
    real = os.path.realpath(found)
    return Runtime("node", real, ("node", "nodejs"), _install_prefix(real))


def default_rules() -> tuple[RuntimeRule, ...]:
    """The built-in table (see the module docstring)."""
    python = python_runtime()
    rules = [RuntimeRule("python", "*", python),
             RuntimeRule("oceanprotocol/algo_dockers", "python*", python)]
    node = node_runtime()
    if node is not None:
        rules += [RuntimeRule("node", "*", node),
                  RuntimeRule("oceanprotocol/algo_dockers", "node*", node)]
    return tuple(rules)


_ENTRY_KEYS: Final = frozenset({"image", "tag", "runtime", "executable", "programs", "paths"})


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _rule(entry: Mapping[str, Any], where: str) -> RuntimeRule:
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise ConfigurationError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    image, tag, name = entry.get("image"), entry.get("tag", "*"), entry.get("runtime")
    if not isinstance(image, str) or not image or not isinstance(tag, str) or not tag:
        raise ConfigurationError(f"{where} needs an image and a tag pattern (strings)")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{where} needs a runtime name")
    builtin = {"python": python_runtime, "node": node_runtime}.get(name)
    base = builtin() if builtin is not None else None
    executable = entry.get("executable", base.executable if base else None)
    if not isinstance(executable, str) or not os.path.isabs(executable):
        raise ConfigurationError(f"{where} needs an absolute executable path")
    if not os.access(executable, os.X_OK):
        raise ConfigurationError(f"{where}: {executable} is not an executable file")
    programs = (_strings(entry["programs"], f"{where}.programs") if "programs" in entry
                else base.programs if base else None)
    if not programs:
        raise ConfigurationError(f"{where} needs programs (entrypoint first words)")
    paths = (_strings(entry["paths"], f"{where}.paths") if "paths" in entry
             else _install_prefix(executable))
    for path in paths:
        if not os.path.isabs(path) or not os.path.isdir(path):
            raise ConfigurationError(f"{where}.paths: {path} is not an existing directory")
    runtime = Runtime(name, executable, programs, paths, base.env if base else {})
    normalised, _ = normalise_image(image, "x")
    return RuntimeRule(normalised, tag, runtime)


def build_runtime_rules(entries: Sequence[Mapping[str, Any]] | None) -> tuple[RuntimeRule, ...]:
    """The table from ``TIDEGATE_COMPUTE_RUNTIMES`` entries; the defaults for None.

    Each entry: ``{"image", "tag"?: glob (default "*"), "runtime": "python" | "node" |
    any name, "executable"?: absolute path, "programs"?: [glob, ...], "paths"?: [dir]}``.
    ``python`` and ``node`` supply defaults for the optional keys; other names need
    ``executable`` and ``programs``. Raises ConfigurationError naming the bad entry.
    """
    if entries is None:
        return default_rules()
    return tuple(_rule(entry, f"TIDEGATE_COMPUTE_RUNTIMES[{i}]")
                 for i, entry in enumerate(entries))


def resolve_runtime(container: Mapping[str, Any] | None,
                    rules: Sequence[RuntimeRule] | None = None) -> Runtime:
    """The runtime for an algorithm's ``container``; call it before starting a job.

    Checks the image and tag against ``rules`` (the defaults when None) and the
    entrypoint's first word against the runtime. Raises :class:`UnsupportedImageError`
    (400, ``unsupported_image``) with a message naming what is supported.
    """
    table = default_rules() if rules is None else rules
    if not isinstance(container, Mapping):
        raise UnsupportedImageError("The algorithm has no container.")
    image, tag = normalise_image(container.get("image"), container.get("tag"))
    if not image:
        raise UnsupportedImageError("The algorithm's container has no image.")
    for rule in table:
        if rule.matches(image, tag):
            rule.runtime.argv(str(container.get("entrypoint") or ""))  # checks the entrypoint
            return rule.runtime
    supported = ", ".join(rule.describe() for rule in table) or "none"
    shown = f"{image}:{tag}"
    shown = shown if len(shown) <= 100 else shown[:97] + "..."
    raise UnsupportedImageError(f"Unsupported image {shown}. This provider runs: {supported}.")
