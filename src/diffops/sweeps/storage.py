"""Where studies live, which worker runs which trial, and what happens to trials of dead workers.

- Storage: a JournalStorage file for several worker processes on one machine (also on NFS); an RDB URL
  (postgresql://..., mysql://...) for workers on many machines, with Optuna's heartbeat (a trial without one
  for GRACE_PERIOD_S is failed and retried, whichever host its worker ran on). SQLite is
  accepted but not for parallel workers (Optuna's FAQ: "database is locked", no SELECT ... FOR UPDATE).
- Each trial records its worker (host, pid, process start time) when it starts. A worker starting on a
  study fails the RUNNING trials whose worker process is gone (killed: SIGKILL, OOM, power loss) and
  enqueues each one again with the same params. A JournalStorage has no heartbeat, so without this they
  would stay RUNNING forever. A trial interrupted by SIGINT/SIGTERM is re-enqueued by its own worker.
- The study's budget (`sweep.n_trials`) counts trials that ended COMPLETE, PRUNED or FAIL, except those
  failed because their worker died (they are retried instead).
"""
from __future__ import annotations

import copy
import inspect
import socket
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from ..config import ConfigError
from ..tracking.store import schema_lock
from ..utils.redact import redact

WORKER = "diffops.worker"          # trial user attr: "host:pid:process start time"
RETRIED = "diffops.retried"        # trial user attr: the trial was failed by its worker's death and enqueued again
RETRY_OF = "diffops.retry_of"      # trial user attr: number of the trial this one repeats
FAIL_REASON = "diffops.fail_reason"
UNCLAIMED_GRACE = timedelta(minutes=2)   # a RUNNING trial with no worker attr after this long is stale


HEARTBEAT_INTERVAL_S = 60      # RDB storage: each running trial's heartbeat; without one for GRACE_PERIOD_S
GRACE_PERIOD_S = 180           # its trial is failed (by the next trial start of any worker) and retried


def make_storage(url: str, root: Path | None = None, on_stale=None, *, heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
                 grace_period: int = GRACE_PERIOD_S) -> optuna.storages.BaseStorage:
    """'sweeps/optuna.journal' (path, relative to root) -> JournalStorage; 'postgresql://...' -> RDBStorage
    with Optuna's heartbeat, its stale trials failed and retried (retry_trial).

    on_stale(frozen_trial, reason) runs for each trial the heartbeat finds stale, after it is failed and retried.
    """
    if "://" in url:
        heartbeat = {}
        if not url.startswith("sqlite"):
            def stale(study, trial):
                retry_trial(study, trial)
                if on_stale is not None:
                    on_stale(trial, f"no heartbeat for {grace_period} s (its worker died or hung); enqueued again")
            callback = ("heartbeat_stale_trial_callback"        # Optuna >= 4.9; failed_trial_callback before
                        if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                        else "failed_trial_callback")
            heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period, callback: stale}
        import sqlalchemy
        try:
            with schema_lock(url), warnings.catch_warnings():   # workers started together on a fresh database
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)    # create its tables once
                return optuna.storages.RDBStorage(url, **heartbeat)
        except sqlalchemy.exc.OperationalError as e:
            reason = str(e.orig or e).strip().splitlines()[0]
            raise ConfigError("sweep.storage", f"cannot open {redact(url)} ({reason}); start the database, "
                                               f"fix the URL, or pass --storage") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    path = Path(url) if Path(url).is_absolute() or root is None else Path(root) / url
    ignored_dir(path.parent)
    return JournalStorage(JournalFileBackend(str(path)))


def ignored_dir(folder: Path) -> Path:
    """Create folder (sweeps/ by default) with a .gitignore of `*`; a folder that exists is left alone."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:             # (also: made by another worker just now)
        return folder
    (folder / ".gitignore").write_text("# Optuna journals and sweep results (diffops sweep)\n*\n")
    return folder


# ----------------------------------------------------------------------------
# Worker identity.

def worker_id() -> str:
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{me.create_time():.3f}"


def worker_alive(worker: str) -> bool | None:
    """True/False for a worker of this host, None when it ran on another host (cannot tell)."""
    host, pid, started = worker.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    try:
        return f"{psutil.Process(int(pid)).create_time():.3f}" == started   # a reused pid has another start time
    except psutil.NoSuchProcess:
        return False


def claim_trial(trial: optuna.Trial) -> None:
    trial.set_user_attr(WORKER, worker_id())

# ----------------------------------------------------------------------------
# Stale trials.

def retry_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Enqueue trial's params again with Optuna's RetryFailedTrialCallback (RetryHeartbeatStaleTrialCallback
    since 4.9: the retry's system attrs failed_trial / retry_history name the original). The retry carries
    RETRY_OF, not the dead attempt's user attrs (its worker, its MLflow run, its fail reason)."""
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    fresh = copy.deepcopy(trial)
    fresh.user_attrs = {RETRY_OF: trial.number}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry()(study, fresh)


def fail_stale_trials(study: optuna.Study, on_fail=None) -> list[int]:
    """Fail the RUNNING trials whose worker process is gone and enqueue them again; return their numbers.

    Safe with several workers starting at once: the storage lets only one of them move a trial from
    RUNNING to FAIL (the others get UpdateFinishedTrialError), and only that one enqueues the retry.
    on_fail(frozen_trial) runs for each failed trial (e.g. to end its MLflow run).
    """
    storage, failed = study._storage, []
    now = datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(WORKER)
        if worker is not None:
            stale = worker_alive(worker) is False
        else:   # created but never claimed: its worker died within milliseconds of starting it
            stale = t.datetime_start is not None and now - t.datetime_start > UNCLAIMED_GRACE
        if not stale:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, RETRIED, True)
            storage.set_trial_user_attr(t._trial_id, FAIL_REASON, f"worker {worker} died while running it")
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue            # another worker got there first
        frozen = storage.get_trial(t._trial_id)
        retry_trial(study, frozen)
        if on_fail is not None:
            on_fail(frozen)
        failed.append(t.number)
    return failed

# ----------------------------------------------------------------------------
# The study's budget.

def spent(study: optuna.Study) -> int:
    """Trials that used up the budget: COMPLETE, PRUNED, and FAIL unless another trial retries it."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    return sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and t.number not in retried))


class StopAtBudget:
    """optimize() callback: stop this worker once the study has spent n_trials (over all workers).

    Like optuna.study.MaxTrialsCallback, but failed trials count unless they are retried. As with
    MaxTrialsCallback, k workers can overshoot by at most k - 1 trials, which started before the last
    counted one ended.
    """

    def __init__(self, n_trials: int):
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if spent(study) >= self.n_trials:
            study.stop()
