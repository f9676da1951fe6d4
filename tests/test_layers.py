"""Layering of src/diffops: each package imports only from earlier layers (or within itself), the
package graph is acyclic, and library code never reaches MLflow or the orchestration layers.

Every import statement counts, including those inside functions and relative imports."""
import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ["utils", "data", "config", "nets", "diffusion", "methods", "artifacts", "sampling", "training",
          "evaluation", "tracking", "stages", "sweeps", "cli"]
LIBRARY = set(LAYERS[:LAYERS.index("tracking")])           # utils ... evaluation
APP = {"tracking", "stages", "sweeps", "cli"}             # what library code must not import


def is_module(name: str) -> bool:
    """Whether the dotted name is a module or package under src/ (a .py file or a folder)."""
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def import_edges() -> list[tuple[str, int, str]]:
    """(module, line, imported module) for every import in every .py under src/diffops, absolute.
    `from X import a` yields X.a when that is a module, else X."""
    edges = []
    for path in sorted((SRC / "diffops").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges += [(module, node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    edges.append((module, node.lineno, full if is_module(full) else base))
    return sorted(set(edges))


def layer(name: str):
    """The top-level package (layer) of a diffops module; None outside diffops or for diffops itself."""
    parts = name.split(".")
    return parts[1] if parts[0] == "diffops" and len(parts) > 1 and parts[1] != "__main__" else None


def report(bad) -> str:
    return "\n".join(f"  {m}:{line} -> {target}" for m, line, target in bad)


def test_no_upward_imports():
    """A module of layer i imports diffops modules of layers <= i only (same layer = own package)."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = [(m, line, t) for m, line, t in import_edges()
           if layer(m) in rank and layer(t) in rank and rank[layer(t)] > rank[layer(m)]]
    assert not bad, f"upward imports (layers: {' < '.join(LAYERS)}):\n{report(bad)}"


def test_package_graph_is_acyclic():
    """The import graph between top-level packages has no cycle."""
    graph: dict[str, dict[str, list]] = {}
    for m, line, t in import_edges():
        if layer(m) and layer(t) and layer(m) != layer(t):
            graph.setdefault(layer(m), {}).setdefault(layer(t), []).append((m, line, t))
    try:
        graphlib.TopologicalSorter(graph).prepare()         # node -> the nodes it needs first
    except graphlib.CycleError as e:
        cycle = e.args[1][::-1]                             # importer -> imported -> ...
        edges = [edge for a, b in zip(cycle, cycle[1:]) for edge in graph[a][b]]
        raise AssertionError(f"package import cycle {' -> '.join(cycle)}:\n{report(edges)}") from None


def test_library_does_not_import_mlflow_or_orchestration():
    """Library packages import neither mlflow nor diffops.tracking/stages/sweeps/cli."""
    bad = [(m, line, t) for m, line, t in import_edges() if layer(m) in LIBRARY
           and (t.split(".")[0] == "mlflow" or layer(t) in APP)]
    assert not bad, f"library code importing mlflow or {sorted(APP)}:\n{report(bad)}"


def test_every_top_level_package_has_a_layer():
    """Each package or module directly under src/diffops is placed in LAYERS."""
    names = {p.stem for p in (SRC / "diffops").iterdir()
             if (p.is_dir() and any(p.rglob("*.py"))) or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))}
    assert names <= set(LAYERS), f"not in LAYERS (place them): {sorted(names - set(LAYERS))}"
