"""Train as `diffops train` does and send this process a signal once a given number of steps is done.

    python -m tests.training.kill_after_step DATA OUT STATE SIGNAL STEPS 'CONFIG_OVERRIDES_JSON'

The signal arrives when the loop asks for the batch of step STEPS + 1, that is after step STEPS, its
metrics and its checkpoint, if any (the loader has no workers, so nothing is fetched ahead). The metrics
logged so far are stored first (MLflow's logging thread might have got there), so that a resume that
logged them again would show."""
import json
import os
import signal
import sys
from pathlib import Path

import mlflow

from diffops.stages.train import run as train
from diffops.training import loop

from ..conftest import tiny_config


def kill_after(steps: int, sig: signal.Signals) -> None:
    batch_indices = loop.ResumableBatchSampler.batch_indices

    def indices_or_signal(self, step):
        if step == steps:
            mlflow.flush_async_logging()
            os.kill(os.getpid(), sig)
        return batch_indices(self, step)
    loop.ResumableBatchSampler.batch_indices = indices_or_signal


if __name__ == "__main__":
    data, out, state, sig, steps, overrides = sys.argv[1:]
    kill_after(int(steps), signal.Signals[sig])
    train(tiny_config(**json.loads(overrides)), Path(data), Path(out), Path(state))
    sys.exit("trained to the end without being signalled")
