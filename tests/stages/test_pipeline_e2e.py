"""End to end: the real quickstart dvc.yaml, `dvc repro evaluate` on tiny params in a temp project.

Checks the whole chain (generate -> prepare -> featurenet -> train -> sample -> evaluate), the
MLflow run it leaves (status, params, metrics, lineage, model), that a second `dvc repro` does
nothing, and that `dvc exp run -S train.lr=...` reruns only what depends on train.lr.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).parent / "dvc")          # the dvc of the environment running the tests
TINY = {
    "generate": {"num_images": 1500, "seed": 0},
    "data": {"resolution": 16, "num_workers": 2},
    "featurenet": {"epochs": 8, "batch_size": 32, "width": 16, "feature_dim": 32},
    "model": {"block_channels": [16, 32], "attention": [False, True], "norm_num_groups": 8},
    "train": {"duration_kimg": 4, "batch_size": 32, "lr": 2e-3, "lr_rampup_kimg": 0.5,
              "ema_halflife_kimg": 0.5, "checkpoint_every_kimg": 2, "grid_every_kimg": 2,
              "log_every_steps": 5, "num_workers": 0},
    "sample": {"num_images": 256, "steps": 10, "batch_size": 128},
    "evaluate": {"batch_size": 256},
    "tracking": {"experiment": "e2e", "system_metrics": True},
}


def run(cmd, cwd, **kw):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=2400, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "dvc.yaml", root)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(DVC).parent}:{env['PATH']}"
    run(["git", "init", "-q"], root)
    run([DVC, "init", "-q"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    out = run([DVC, "repro", "evaluate"], root, env=env)       # the EDM quickstart chain
    return root, env, out


def test_repro_runs_every_stage_and_writes_metrics(project):
    root, _, out = project
    for stage in ("generate", "prepare", "featurenet", "train", "sample", "evaluate"):
        assert f"Running stage '{stage}'" in out
    m = json.loads((root / "metrics" / "edm.json").read_text())
    assert m["num_samples"] == 256
    # The trained model is far better than chance, and its samples' attribute rates near the data's.
    assert m["fd_attrnet"] < 0.8 * m["fd_attrnet_untrained"]
    assert m["fd_attrnet_data"] < m["fd_attrnet"]
    assert 0 <= m["attr_rate_mae"] < 0.35
    assert len(list((root / "samples" / "edm" / "images").glob("*.png"))) == 256


def test_mlflow_run_holds_params_metrics_lineage_and_model(project):
    root, _, _ = project
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("e2e")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"featurenet", "train-edm"}
    run = runs["train-edm"]
    assert run.info.status == "FINISHED" and runs["featurenet"].info.status == "FINISHED"
    assert run.data.params["train.lr"] == "0.002" and run.data.params["model.block_channels"] == "[16, 32]"
    m = json.loads((root / "metrics" / "edm.json").read_text())
    assert run.data.metrics["fd_attrnet"] == pytest.approx(m["fd_attrnet"])
    assert "loss" in run.data.metrics and "system/cpu_utilization_percentage" in run.data.metrics
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    meta = json.loads((root / "data" / "prepared" / "meta.json").read_text())
    assert run.inputs.dataset_inputs[0].dataset.digest == meta["content_sha256"][:36]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"grids", "checkpoints", "samples", "evaluation", "config"} <= artifacts
    # The logged EMA model generates images from seeds, each a function of its seed.
    models = client.search_logged_models([exp.experiment_id])
    assert [lm.name for lm in models] == ["ema_model"]
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    generator = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    images = generator.predict(pd.DataFrame({"seed": [3, 4]}), params={"steps": 4})
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8
    again = generator.predict(pd.DataFrame({"seed": [4]}), params={"steps": 4})
    assert np.abs(again[0].astype(int) - images[1]).max() <= 1


def test_plots_and_metrics_people_look_at(project):
    root, env, _ = project
    curve = json.loads((root / "plots" / "train" / "edm.json").read_text())
    assert len(curve) >= 10 and curve[0]["kimg"] < curve[-1]["kimg"] and curve[-1]["loss"] < curve[0]["loss"]
    rows = json.loads((root / "plots" / "edm" / "attributes.json").read_text())
    assert {"attribute", "samples", "reference"} <= set(rows[0]) and len(rows) == len(attributes_of(root))
    run([DVC, "plots", "show", "-o", "plots_html"], root, env=env)
    page = (root / "plots_html" / "index.html").read_text()
    for shown in ("training loss: edm", "attribute rates: samples", "attribute rates: reference", "grid.png"):
        assert shown in page, shown
    # edm.json holds headline numbers only: its `dvc metrics show` table fits a terminal (the whole root
    # pipeline's does not yet: DVC joins the keys of every metrics file into one table).
    assert not [k for k in json.loads((root / "metrics" / "edm.json").read_text()) if k.startswith("attr_rate.")]
    table = run([DVC, "metrics", "show"], root, env=env)
    assert max(map(len, table.splitlines())) <= 250, table


def attributes_of(root):
    return yaml.safe_load((root / "params.yaml").read_text())["featurenet"]["attributes"]


def test_second_repro_does_nothing_and_exp_run_reruns_only_dependents(project):
    root, env, _ = project
    out = run([DVC, "repro", "evaluate"], root, env=env)
    assert "Running stage" not in out
    out = run([DVC, "exp", "run", "evaluate", "-S", "train.lr=0.001"], root, env=env)
    ran = {s for s in ("generate", "prepare", "featurenet", "reference", "train", "sample", "evaluate")
           if f"Running stage '{s}'" in out}
    assert ran == {"train", "sample", "evaluate"}
