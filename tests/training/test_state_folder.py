"""The state folder: diffops cleans only what it wrote (issue 15, part 1)."""
import json

import mlflow
import pytest

from diffops.stages.train import run as train
from diffops.training import checkpoint as ckpt
from diffops.utils.io import MARKER

from ..conftest import tiny_config, write_prepared

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_folder_diffops_did_not_create_is_refused_untouched(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    state = tmp_path / "state"
    state.mkdir()
    (state / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(FileExistsError) as e:
        train(tiny_config(), data, tmp_path / "out", state)
    assert str(state) in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in state.iterdir()) == ["thesis.tex"]
    assert not (tmp_path / "out").exists()


def test_stale_checkpoints_go_the_users_files_stay_and_their_run_is_killed(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    state = tmp_path / "state"
    train(tiny_config(), data, tmp_path / "out", state, stop_after_steps=6)
    assert (state / MARKER).is_file()                      # diffops created it, so it says so
    old = ckpt.list_checkpoints(state)
    old_run = json.loads((old[0] / "state.json").read_text())["mlflow_run_id"]
    client = mlflow.MlflowClient()
    client.update_run(old_run, status="RUNNING")           # as a SIGKILLed training leaves its run
    (state / "thesis.tex").write_text("\\documentclass{article}")
    (state / "checkpoint-000000024.tmp").mkdir()           # a half-written checkpoint of that training

    train(tiny_config(**{"train.lr": 1e-4}), data, tmp_path / "out", state)
    assert (state / "thesis.tex").read_text() == "\\documentclass{article}"
    assert sorted(p.name for p in state.iterdir()) == [MARKER, "checkpoint-000000020", "checkpoint-000000040",
                                                      ckpt.RUN_FILE, "thesis.tex"]
    new_runs = {json.loads((p / "state.json").read_text())["mlflow_run_id"] for p in ckpt.list_checkpoints(state)}
    assert old_run not in new_runs
    assert client.get_run(old_run).info.status == "KILLED"
    assert client.get_run(new_runs.pop()).info.status == "FINISHED"
