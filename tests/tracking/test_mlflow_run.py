"""Runs end with a truthful status: FINISHED, FAILED on an exception, KILLED on SIGTERM."""
import os
import signal
import subprocess
import sys
import textwrap

import mlflow
import pytest

from diffops.tracking.mlflow_run import EXPERIMENT_KIND_TAG, tracked_run, use_experiment

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from diffops.tracking.mlflow_run import tracked_run
    with tracked_run("status", run_name=sys.argv[1]) as run:
        print(run.info.run_id, flush=True)
        if sys.argv[1] == "crash":
            raise RuntimeError("boom")
        if sys.argv[1] == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
""")


@pytest.mark.parametrize("mode, status, returncode", [
    ("ok", "FINISHED", 0), ("crash", "FAILED", 1), ("sigterm", "KILLED", 1)])
def test_status_is_truthful(tmp_path, mlflow_uri, mode, status, returncode):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          env=os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri}, timeout=120, cwd=tmp_path)
    assert proc.returncode == returncode, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    assert mlflow.MlflowClient(mlflow_uri).get_run(run_id).info.status == status


def test_experiment_is_marked_for_model_development_and_run_has_lineage(tmp_path, mlflow_uri):
    exp_id = use_experiment("kind")
    exp = mlflow.MlflowClient().get_experiment(exp_id)
    assert exp.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    with tracked_run("kind", run_name="lineage") as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert len(tags["mlflow.source.git.commit"]) == 40       # the test runs inside the diffops checkout
    assert tags["diffops.git_dirty"] in ("True", "False")
