"""Rewrite the src/diffops code deps of every dvc.yaml stage to its import closure (what
tests/test_dvc_deps.py checks). Other deps, params, outs and comments are kept as they are.

    .venv/bin/python scripts/dvc_code_deps.py            # rewrite dvc.yaml and pipelines/*/dvc.yaml
    .venv/bin/python scripts/dvc_code_deps.py --check    # only list the stages that would change

A folder whose every non-empty module is in the closure is listed as the folder.
"""
import argparse
import posixpath
import sys
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_dvc_deps import DVC_YAMLS, ROOT, callback_module, closure_files, command_words, is_empty  # noqa: E402


def folder_files(folder: Path) -> set[str]:
    return {f.relative_to(ROOT).as_posix() for f in folder.rglob("*.py")
            if not (f.name == "__init__.py" and is_empty(f))}


def compress(files: set[str]) -> list[str]:
    """Files -> the shortest list of files and whole folders under src/diffops that covers exactly them."""
    out, left = [], set(files)
    for folder in sorted((ROOT / "src/diffops").iterdir()):
        if folder.is_dir() and (inside := folder_files(folder)) and inside <= files:
            out.append(folder.relative_to(ROOT).as_posix())
            left -= inside
    return sorted(out + sorted(left))


def code_deps(spec) -> list[str]:
    cmds = spec["cmd"] if isinstance(spec["cmd"], list) else [spec["cmd"]]
    modules = {callback_module(command_words(cmd)) for cmd in cmds}
    return compress(set().union(*map(closure_files, modules)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stages whose code deps differ; write nothing")
    args = parser.parse_args()
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    changed = []
    for path in DVC_YAMLS:
        doc = yaml.load(path.read_text())
        folder = path.parent.relative_to(ROOT).as_posix()
        prefix = posixpath.relpath("src", folder)                  # how this file spells src/
        for name, stage in doc["stages"].items():
            spec = stage.get("do", stage)
            deps = spec.get("deps", [])
            is_code = [posixpath.normpath(posixpath.join(folder, d)).startswith("src/diffops/") for d in deps]
            want = [posixpath.join(prefix, f[len("src/"):]) for f in code_deps(spec)]
            if [d for d, c in zip(deps, is_code) if c] == want:
                continue
            changed.append(f"{path.relative_to(ROOT)}:{name}")
            first = is_code.index(True) if any(is_code) else len(deps)
            others = [d for d, c in zip(deps, is_code) if not c]
            keep_before = [d for d, c in zip(deps[:first], is_code[:first]) if not c]
            new = keep_before + want + others[len(keep_before):]
            deps.clear()
            deps.extend(new)
        if not args.check and any(c.startswith(f"{path.relative_to(ROOT)}:") for c in changed):
            with path.open("w") as f:
                yaml.dump(doc, f)
    print("\n".join(changed) or "code deps up to date")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
