"""Which root-pipeline stages a params change invalidates, checked with the real `dvc` on a copy of
the project whose dvc.lock is committed from placeholders (no stage runs)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


def dvc(*args, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["DVC_NO_ANALYTICS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def declared_paths(dvc_yaml: Path) -> set[str]:
    """deps and outs of every stage, foreach stages expanded (`${key}` / `${item}`)."""
    paths = set()
    for spec in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        items = spec.get("foreach", {None: None})
        items = items.items() if isinstance(items, dict) else ((item, item) for item in items)
        body = spec.get("do", spec)
        for key, item in items:
            for entry in body.get("deps", []) + body.get("outs", []) + body.get("metrics", []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                paths.add(path.replace("${key}", str(key)).replace("${item}", str(item)))
    return paths


def test_train_lr_invalidates_only_train(tmp_path):
    """Changing train.lr marks exactly the stages that read it: `train` (dvc status does not list
    downstream stages until train's outputs actually change)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc("init", "-q", cwd=tmp_path)
    for rel in declared_paths(tmp_path / "dvc.yaml"):
        path = tmp_path / rel
        assert "${" not in rel, rel
        if path.exists():
            continue
        if path.suffix:                                       # metrics/edm.json, metrics/tiw.md, ...
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n" if path.suffix == ".json" else "placeholder\n")
        else:                                                 # data/prepared, models/edm, ...
            path.mkdir(parents=True)
            (path / "placeholder").write_text(rel)
    dvc("commit", "-f", "-q", cwd=tmp_path)
    assert json.loads(dvc("status", "--json", cwd=tmp_path)) == {}, "dvc.lock does not match after commit"

    rt = YAML()
    params = rt.load(tmp_path / "params.yaml")
    params["train"]["lr"] = params["train"]["lr"] / 2
    rt.dump(params, tmp_path / "params.yaml")
    changed = set(json.loads(dvc("status", "--json", cwd=tmp_path)))
    assert changed == {"train"}, f"stages invalidated by train.lr: {sorted(changed)} (expected only train)"


def test_readme_names_what_train_lr_reruns():
    """The README's `dvc exp run -S train.lr=...` example says it reruns train, sample and evaluate."""
    lines = (ROOT / "README.md").read_text().splitlines()
    at = next((i for i, line in enumerate(lines) if "dvc exp run -S train.lr" in line), None)
    assert at is not None, "README.md has no `dvc exp run -S train.lr=...` example"
    paragraph = "\n".join(lines[at:at + 7])
    named = {s for s in ("train", "sample", "evaluate") if re.search(rf"\b{s}\b(?![.=])", paragraph)}
    assert named == {"train", "sample", "evaluate"}, f"not named after the example: {paragraph}"
