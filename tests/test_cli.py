"""The generated command line: every stage command is reachable by its name, `--help` lists it with the
help its own docstring gives (read without importing it), and every command shows a runnable example."""
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from diffops.cli import main, stage_short_help
from diffops.stages import GROUPS, ROOT

COMMANDS = [((name,), module) for name, module in ROOT.items()] + [
    ((group, name), module) for group, (_, modules) in GROUPS.items() for name, module in modules.items()]


def resolve(words):
    command = main
    for word in words:
        command = command.get_command(click.Context(command), word)
    return command


@pytest.mark.parametrize("words,module", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_listed_help_is_the_command_own_and_it_has_an_example(words, module):
    command = resolve(words)
    assert stage_short_help(module, 60) == command.get_short_help_str(60)
    result = CliRunner().invoke(main, [*words, "--help"], prog_name="diffops")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"diffops {' '.join(words)}" in result.output


def test_top_level_help_lists_every_command_without_loading_torch():
    code = ("import sys; from click.testing import CliRunner; from diffops.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); print(r.output); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("False"), "diffops --help imported torch"
    for name in [*ROOT, *GROUPS, "check", "ui", "dashboard", "sweep"]:
        assert f"  {name} " in out
