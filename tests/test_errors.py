"""Bad input as a careful new user gives it: every failure is one line on stderr that names the file, key
or path, nothing finished is replaced, and `diffops --debug` shows the traceback instead.

`python -m tests.test_errors` prints the table of kinds and messages that the README quotes."""
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from diffops.artifacts.denoiser import save_denoiser
from diffops.cli import main
from diffops.diffusion.edm import EDMPrecond
from diffops.nets.unet import build_unet

from .conftest import write_prepared
from .helpers.filesystems import small_filesystem

TINY_UNET = {"resolution": 8, "block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4}
TINY_PARAMS = {"data": {"resolution": 8, "crop": 8},
               "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4}}


def exported_model(folder: Path, unet=TINY_UNET) -> Path:
    """An exported denoiser as the train stage writes it (untrained weights)."""
    folder.mkdir(parents=True)
    save_denoiser(folder, EDMPrecond(build_unet(**unet), sigma_data=0.5), {"unet": unet, "sigma_data": 0.5})
    return folder


def params_file(tmp: Path, text: bytes | str = "{}\n") -> Path:
    p = tmp / "params.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


# Each case: (kind, setup(tmp) -> argv, words the one line must hold). Paths in argv are under tmp.
def non_utf8_params(tmp):
    return ["check", "--params", str(params_file(tmp, b"train:\n  lr: caf\xe9\n"))]


def not_yaml_params(tmp):
    return ["check", "--params", str(params_file(tmp, "train: [lr: 1\n"))]


def unknown_key(tmp):
    return ["check", "--params", str(params_file(tmp, "train:\n  learning_rate: 0.1\n"))]


def missing_params(tmp):
    return ["check", "--params", str(tmp / "nope.yaml")]


def model_without_spec(tmp):
    (tmp / "model").mkdir()
    return ["sample", "--params", str(params_file(tmp)), "--model", str(tmp / "model"), "--out", str(tmp / "s")]


def corrupt_spec(tmp):
    model = exported_model(tmp / "model")
    (model / "model.json").write_text('{"unet": ')
    return ["sample", "--params", str(params_file(tmp)), "--model", str(model), "--out", str(tmp / "s")]


def other_architecture(tmp):
    model = exported_model(tmp / "model")
    other = exported_model(tmp / "other", TINY_UNET | {"block_channels": [8, 16]})
    shutil.copy(other / "ema.safetensors", model / "ema.safetensors")
    return ["sample", "--params", str(params_file(tmp)), "--model", str(model), "--out", str(tmp / "s")]


def truncated_weights(tmp):
    model = exported_model(tmp / "model")
    data = (model / "ema.safetensors").read_bytes()
    (model / "ema.safetensors").write_bytes(data[:len(data) // 2])
    return ["sample", "--params", str(params_file(tmp)), "--model", str(model), "--out", str(tmp / "s")]


def user_folder_as(option):
    """`train` with the user's folder thesis/ (holding thesis.tex) as its --out or --state."""
    def setup(tmp):
        (tmp / "thesis").mkdir()
        (tmp / "thesis" / "thesis.tex").write_text("precious")
        write_prepared(tmp / "data")
        paths = {"--out": tmp / "m", "--state": tmp / "state"} | {option: tmp / "thesis"}
        return ["train", "--params", str(params_file(tmp)), "--data", str(tmp / "data"),
                *(w for k, v in paths.items() for w in (k, str(v)))]
    return setup


def read_only_out(tmp):
    write_prepared(tmp / "data")
    ro = small_filesystem(tmp / "ro", "1m", read_only=True)
    return ["train", "--params", str(params_file(tmp)), "--data", str(tmp / "data"), "--out", str(ro / "model"),
            "--state", str(tmp / "state")]


def no_readable_image(tmp):
    from diffops.data.synthetic_celeba import generate_celeba_like
    generate_celeba_like(tmp / "raw", 12, seed=0, progress=False)
    for jpg in (tmp / "raw" / "img_align_celeba").glob("*.jpg"):
        jpg.write_bytes(b"\xff\xd8 broken")
    text = yaml.safe_dump({"data": {"resolution": 8, "crop": 8, "num_workers": 1}})
    return ["prepare", "--params", str(params_file(tmp, text)), "--raw", str(tmp / "raw"), "--out", str(tmp / "p")]


def full_disk_convert(tmp):
    from diffops.data.synthetic_celeba import generate_celeba_like
    generate_celeba_like(tmp / "raw", 40, seed=0, progress=False)
    small = small_filesystem(tmp / "small", "48k")
    return ["convert", "--source", str(tmp / "raw" / "img_align_celeba"), "--dest", str(small / "d.zip"),
            "--transform", "center-crop", "--resolution", "32", "--num-workers", "1", "--no-mlflow"]


def full_disk_checkpoints(tmp):
    write_prepared(tmp / "data")
    small = small_filesystem(tmp / "small", "64k")
    text = yaml.safe_dump({"train": {"duration_kimg": 0.032, "batch_size": 8, "checkpoint_every_kimg": 0.016,
                                     "num_workers": 0}, "tracking": {"system_metrics": False}} | TINY_PARAMS)
    return ["train", "--params", str(params_file(tmp, text)), "--data", str(tmp / "data"), "--out", str(tmp / "m"),
            "--state", str(small / "state")]


def unreachable_optuna_storage(tmp):
    write_prepared(tmp / "data")
    (tmp / "featurenet").mkdir()
    return ["sweep", "--params", str(params_file(tmp)), "--data", str(tmp / "data"), "--n-trials", "1",
            "--featurenet", str(tmp / "featurenet"),
            "--storage", "postgresql://postgres:hunter2@127.0.0.1:1/nope"]


def unreachable_tracking_server(tmp, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:hunter2@127.0.0.1:1")
    write_prepared(tmp / "data")
    return ["train", "--params", str(params_file(tmp)), "--data", str(tmp / "data"), "--out", str(tmp / "m"),
            "--state", str(tmp / "state")]


CASES = [
    ("params file not UTF-8", non_utf8_params, ["params.yaml", "not UTF-8", "byte 16"]),
    ("params file not YAML", not_yaml_params, ["params.yaml"]),
    ("unknown params key", unknown_key, ["train.learning_rate"]),
    ("params file missing", missing_params, ["nope.yaml", "--params"]),
    ("model folder without model.json", model_without_spec, ["model.json", "not found"]),
    ("model.json not JSON", corrupt_spec, ["model.json", "not valid JSON"]),
    ("weights of another architecture", other_architecture, ["ema.safetensors", "another architecture"]),
    ("truncated weights", truncated_weights, ["ema.safetensors", "truncated"]),
    ("--out is a user's folder", user_folder_as("--out"), ["thesis", "did not write it"]),
    ("--state is a user's folder", user_folder_as("--state"), ["thesis", "did not write it"]),
    ("--out on a read-only file system", read_only_out, ["read-only file system"]),
    ("raw folder with no readable image", no_readable_image, ["img_align_celeba", "no readable image"]),
    ("container on a full disk", full_disk_convert, ["d.zip", "No space left on device", "free some space"]),
    ("checkpoints on a full disk", full_disk_checkpoints, ["small/state/checkpoint-", "No space left on device"]),
    ("Optuna storage that does not answer", unreachable_optuna_storage, ["sweep.storage", "postgres:***@"]),
    ("MLflow server that does not answer", unreachable_tracking_server, ["127.0.0.1:1"]),
]


def error_lines(stderr: str) -> list[str]:
    """stderr without its progress bars (tqdm redraws a line with carriage returns)."""
    parts = re.split(r"[\r\n]", stderr)
    return [p for p in (re.sub(r"^.*?(?<![A-Za-z])(?=Error: )", "", q) for q in parts)
            if p.strip() and not re.search(r"\d+(img|kimg|it|batch|chunk)?/s\]|\?\w*/s\]", p)]


def run(argv, debug=False):
    return CliRunner().invoke(main, (["--debug"] if debug else []) + argv, prog_name="diffops")


@pytest.mark.parametrize("kind,setup,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_what_to_fix(kind, setup, words, tmp_path, mlflow_uri, monkeypatch):
    argv = setup(tmp_path, monkeypatch) if "monkeypatch" in setup.__code__.co_varnames else setup(tmp_path)
    result = run(argv)
    assert result.exit_code != 0 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]
    assert "hunter2" not in result.output
    if (tmp_path / "thesis").exists():
        assert (tmp_path / "thesis" / "thesis.tex").read_text() == "precious"
    assert not list(tmp_path.glob("**/*.tmp")), "a temporary output was left behind"


def test_debug_shows_the_traceback(tmp_path):
    result = run(model_without_spec(tmp_path), debug=True)
    assert isinstance(result.exception, FileNotFoundError) and "model.json" in str(result.exception)


def test_an_internal_error_says_how_to_get_the_traceback():
    from diffops.cli import one_line
    assert "diffops --debug" in one_line(ZeroDivisionError("division by zero"))
    assert "diffops --debug" not in one_line(ValueError("x: must be positive"))


if __name__ == "__main__":            # the README's table: python -m tests.test_errors
    import tempfile
    from .helpers.filesystems import unmount_all
    print("| bad input | the one line |\n|---|---|")
    for kind, setup, _ in CASES:
        with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
            argv = setup(Path(d), mp) if "monkeypatch" in setup.__code__.co_varnames else setup(Path(d))
            lines = error_lines(run(argv).stderr)
            out = lines[-1].replace(d, "…").replace("|", "\\|")
            unmount_all()
        print(f"| {kind} | `{out}` |")
    sys.exit(0)
