"""Code deps of every DVC stage match the code the stage runs: its command's diffops.stages module and
everything that module imports within diffops (transitively, in-function imports included)."""
import ast
import inspect
import posixpath
import shlex
from functools import cache
from itertools import takewhile
from pathlib import Path

import click
import pytest
import yaml

from tests.test_layers import SRC, import_edges, is_module

ROOT = SRC.parent
DVC_YAMLS = [ROOT / "dvc.yaml", *sorted(ROOT.glob("pipelines/*/dvc.yaml"))]
STAGES = [(path, name, spec.get("do", spec))            # foreach stages: the `do` template
          for path in DVC_YAMLS for name, spec in yaml.safe_load(path.read_text())["stages"].items()]


def command_words(cmd: str) -> list[str]:
    """The words after `diffops` / `-m diffops.cli` in a stage cmd, up to the first option."""
    tokens = shlex.split(cmd)
    starts = [i + 2 for i, tok in enumerate(tokens[:-1])
              if tok in ("-m", "--module") and tokens[i + 1] in ("diffops", "diffops.cli")]
    starts += [i + 1 for i, tok in enumerate(tokens) if posixpath.basename(tok) == "diffops"]
    assert starts, f"no diffops command in cmd: {cmd}"
    return list(takewhile(lambda tok: not tok.startswith("-"), tokens[min(starts):]))


def callback_module(words: list[str]) -> str:
    """The module defining the callback of `diffops <words...>` (resolved through diffops.cli.main)."""
    from diffops.cli import main
    command = main
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        assert sub is not None, f"`diffops {' '.join(words)}`: no command {word!r} in {command.name!r}"
        command = sub
    return inspect.unwrap(command.callback).__module__


def module_file(name: str) -> Path | None:
    path = SRC.joinpath(*name.split("."))
    return next((p for p in (path.with_suffix(".py"), path / "__init__.py") if p.is_file()), None)


@cache
def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, _, target in import_edges():
        if target.split(".")[0] == "diffops":
            edges.setdefault(module, set()).add(target)
    return edges


def closure_files(root: str) -> set[str]:
    """Project-relative files of `root`, of its parent packages and of all it imports within diffops,
    without empty `__init__.py` files (nothing but a docstring)."""
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)]
        for module in parents:
            if module not in seen and is_module(module):
                seen.add(module)
                todo.extend(graph().get(module, ()))
    files = {f for f in map(module_file, seen) if f}
    return {f.relative_to(ROOT).as_posix() for f in files if not (f.name == "__init__.py" and is_empty(f))}


def is_empty(path: Path) -> bool:
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in ast.parse(path.read_text()).body)


@pytest.mark.parametrize("dvc_yaml,stage,spec", STAGES, ids=[f"{p.relative_to(ROOT)}:{n}" for p, n, _ in STAGES])
def test_code_deps_cover_the_stage_code_and_nothing_else(dvc_yaml, stage, spec):
    """Every file the stage's code imports is in its deps (itself or a parent folder), and every
    src/diffops deps entry holds some of that code (no stale code deps)."""
    cmds = spec["cmd"] if isinstance(spec["cmd"], list) else [spec["cmd"]]
    commands = {" ".join(command_words(cmd)): None for cmd in cmds}
    modules = {callback_module(words.split()) for words in commands}
    misplaced = sorted(m for m in modules if not m.startswith("diffops.stages."))
    assert not misplaced, f"{stage}: `diffops {' / '.join(commands)}` is defined in {misplaced}, not in diffops.stages"
    folder = dvc_yaml.parent.relative_to(ROOT).as_posix()
    deps = {posixpath.normpath(posixpath.join(folder, d)) for d in spec.get("deps", [])}
    code = set().union(*map(closure_files, modules))
    covers = lambda dep, f: f == dep or f.startswith(dep + "/")
    missing = sorted(f for f in code if not any(covers(d, f) for d in deps))
    stale = sorted(d for d in deps if d.split("/")[:2] == ["src", "diffops"] and not any(covers(d, f) for f in code))
    prefix = posixpath.relpath("src", folder)                   # how this dvc.yaml spells src/
    assert not missing and not stale, (
        f"{dvc_yaml.relative_to(ROOT)} stage {stage} (code: {sorted(modules)}):\n"
        + "".join(f"  missing dep: - {posixpath.join(prefix, f[4:])}\n" for f in missing)
        + "".join(f"  stale dep:   - {posixpath.join(prefix, d[4:])}\n" for d in stale))
