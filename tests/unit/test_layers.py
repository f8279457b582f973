"""The package layering of docs/architecture.md, read from the source with ``ast``.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a lazy
import is still a dependency. Nodes are the packages under ``src/tidegate`` and its
top-level modules (``app``, ``cli``, ``settings``, ``errors`` ...); ``tidegate`` itself
stands for ``tidegate/__init__.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "tidegate"
DOMAIN = ("auth", "chain", "assets", "files", "fees", "compute", "crypto", "stores")
WEB = ("fastapi", "starlette", "uvicorn")
ENV_READERS = {
    "tidegate.settings",
    # The entry point hands the process environment to `tidegate dev`, which layers
    # its defaults under it before Settings reads it.
    "tidegate.cli",
}


@dataclass(frozen=True)
class Import:
    source: str
    """The importing module, dotted (``tidegate.chain.nft``)."""
    target: str
    """What it imports, dotted (``tidegate.errors.BadRequestError``, ``web3``)."""
    line: int
    lazy: bool
    """Inside a function (so not run at import time)."""

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}{' (lazily)' if self.lazy else ''}"


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _walk(node: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, lazy
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner)


def imports_of(root: Path, path: Path) -> list[Import]:
    source = module_name(root, path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found = []
    for node, lazy in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [Import(source, target, node.lineno, lazy) for target in targets]
    return found


def all_imports(root: Path = SRC) -> list[Import]:
    return [i for path in sorted(root.rglob("*.py")) for i in imports_of(root, path)]


def node_of(root: Path, dotted: str) -> str | None:
    """The package or top-level module of ``dotted`` under ``root``, else None."""
    parts = dotted.split(".")
    if parts[0] != root.name:
        return None
    if len(parts) > 1 and ((root / parts[1]).is_dir() or (root / f"{parts[1]}.py").is_file()):
        return parts[1]
    return root.name  # the package's __init__ (or a name defined there)


def package_graph(root: Path = SRC) -> dict[str, dict[str, list[Import]]]:
    """node -> node it imports -> the imports that make the edge (no self-edges)."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for imp in all_imports(root):
        source, target = node_of(root, imp.source), node_of(root, imp.target)
        assert source is not None
        graph.setdefault(source, {})
        if target is not None and target != source:
            graph[source].setdefault(target, []).append(imp)
    return graph


def find_cycles(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle(graph: Mapping[str, Mapping[str, object]], members: list[str]) -> list[str]:
    """The shortest cycle within ``members`` (one strongly connected component)."""
    best: list[str] = []
    for start in members:
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in graph.get(node, {}):
                if nxt == start and (not best or len(paths[node]) < len(best)):
                    best = paths[node]
                elif nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
    return best


def _explain(graph: Mapping[str, Mapping[str, list[Import]]], component: list[str]) -> str:
    """The component, and the imports along its shortest cycle."""
    cycle = shortest_cycle(graph, component)
    lines = [f"{' <-> '.join(component)}; for instance {' -> '.join([*cycle, cycle[0]])}:"]
    for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        lines += [f"  {imp}" for imp in graph[a][b][:2]]
    return "\n".join(lines)


def _offending(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    def within(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return [str(i) for i in all_imports()
            if within(i.source, sources) and within(i.target, forbidden)]


# -- the checker itself -------------------------------------------------------------


def test_the_checker_sees_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    root = tmp_path / "tidegate"
    for package in ("low", "high"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "high" / "a.py").write_text("from tidegate.low import b\nfrom .. import errors\n")
    (root / "low" / "b.py").write_text("def f():\n    from tidegate.high.a import x\n")
    graph = package_graph(root)
    assert set(graph["high"]) == {"low", "errors"}
    [edge] = graph["low"]["high"]
    assert (edge.source, edge.target, edge.lazy) == ("tidegate.low.b", "tidegate.high.a.x", True)
    assert find_cycles(graph) == [["high", "low"]]
    assert shortest_cycle(graph, ["high", "low"]) == ["high", "low"]
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) == []
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [
        ["a", "b", "c"]]


# -- the rules ------------------------------------------------------------------------


def test_no_import_cycles_between_packages() -> None:
    graph = package_graph()
    assert {"api", "commands", "dev", *DOMAIN} <= set(graph)
    cycles = find_cycles(graph)
    assert not cycles, "package import cycles:\n" + "\n".join(_explain(graph, c) for c in cycles)


def test_the_domain_imports_no_outer_layer_and_no_web_framework() -> None:
    outer = ("tidegate.api", "tidegate.app", "tidegate.cli", "tidegate.commands",
             "tidegate.dev")
    sources = tuple(f"tidegate.{p}" for p in DOMAIN)
    assert _offending(sources, (*outer, *WEB)) == []


def test_commands_know_nothing_of_http() -> None:
    forbidden = ("tidegate.api", "tidegate.app", "tidegate.cli", "tidegate.dev", *WEB)
    assert _offending(("tidegate.commands",), forbidden) == []


def test_only_the_cli_imports_the_dev_wing_and_only_inside_its_commands() -> None:
    users = [i for i in all_imports() if i.target.startswith("tidegate.dev")
             and not i.source.startswith("tidegate.dev")]
    assert {i.source for i in users} <= {"tidegate.cli"}, [str(i) for i in users]
    assert [str(i) for i in users if not i.lazy] == []


def test_serving_loads_neither_the_dev_wing_nor_the_tester_stack() -> None:
    """What `tidegate serve` imports (the CLI and the app) pulls in no dev module, no
    eth-tester and no py-evm (they are an optional extra)."""
    probe = (
        "import sys, tidegate.cli, tidegate.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('eth_tester', 'eth')\n"
        "             or m.startswith('tidegate.dev')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120, env={"PYTHONPATH": str(SRC.parent)})
    assert out.stdout.strip() == "[]"


def _environment_reads(path: Path) -> list[str]:
    reads = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "os" and node.attr in ("environ", "environb", "getenv",
                                                              "putenv", "unsetenv")):
            reads.append(f"{path.relative_to(SRC.parent)}:{node.lineno} os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            reads += [f"{path.relative_to(SRC.parent)}:{node.lineno} from os import {a.name}"
                      for a in node.names if a.name in ("environ", "environb", "getenv")]
    return reads


def test_only_settings_reads_the_environment() -> None:
    reads = [read for path in sorted(SRC.rglob("*.py"))
             if module_name(SRC, path) not in ENV_READERS for read in _environment_reads(path)]
    assert reads == []
