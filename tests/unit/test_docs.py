"""The README and the docs say only what exists: every command they show in a code block
is a real command (`--help` answers), and every relative link and anchor resolves."""

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ops.cli import cli as zenloop_cli

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "benchmarks/README.md",
]
CODE_BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`((?:zenloop|zenml|make|\.venv/bin/python benchmarks/)[^`]*)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.M)
HELP_TIMEOUT_S = 120


def _commands() -> list[tuple[str, str]]:
    """(document, command line) for each shell line in a code block and each inline
    command, prompts and comments stripped, `a; b` split."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        lines = [line for block in CODE_BLOCK.findall(text) for line in block.splitlines()]
        for line in lines + INLINE.findall(CODE_BLOCK.sub("", text)):
            line = line.split("  #")[0].strip().removeprefix("$ ")
            for command in filter(None, (part.strip() for part in line.split(";"))):
                found.append((document.name, command))
    return found


def _resolve(group: click.Group, words: list[str]) -> list[str]:
    """The subcommand path a command line names: words while they are subcommands."""
    path, command = [], group
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            break
        path.append(word)
        command = sub
    return path


def _cli_words(command: str, program: str) -> list[str] | None:
    words = command.split()
    if not words or words[0] != program:
        return None
    return [w for w in words[1:] if not w.startswith(("[", "-"))]


COMMANDS = _commands()


def test_the_documents_show_commands_at_all():
    programs = {command.split()[0] for _, command in COMMANDS}
    assert {"zenloop", "zenml", "make"} <= programs, programs


@pytest.mark.parametrize(
    ("document", "command"), [c for c in COMMANDS if c[1].startswith("zenloop ")]
)
def test_every_zenloop_command_shown_exists(document, command):
    words = _cli_words(command, "zenloop")
    path = _resolve(zenloop_cli, words)
    assert path or not words, f"{document}: {command!r} names no zenloop command"
    result = CliRunner().invoke(zenloop_cli, [*path, "--help"])
    assert result.exit_code == 0, (document, command, result.output)
    for option in re.findall(r"(--[a-z][a-z-]*)", command):
        assert option in result.output, f"{document}: {command!r}: no option {option}"


def test_every_zenml_command_shown_exists():
    from zenml.cli.cli import cli as zenml_cli

    shown = {c for _, c in COMMANDS if c.startswith("zenml ")}
    assert shown
    for command in shown:
        path = _resolve(zenml_cli, _cli_words(command, "zenml"))
        assert path, f"{command!r} names no zenml command"
        result = CliRunner().invoke(zenml_cli, [*path, "--help"])
        assert result.exit_code == 0, (command, result.output)
        words = command.split()
        if words[1:3] == ["pipeline", "run"] and len(words) >= 6:  # its source and config too
            source, config = words[3], words[5]
            module, name = source.rsplit(".", 1)
            assert hasattr(__import__(module, fromlist=[name]), name), source
            assert (ROOT / config).is_file(), config


def test_every_make_target_and_script_shown_exists():
    makefile = (ROOT / "Makefile").read_text()
    for document, command in COMMANDS:
        words = command.split()
        if words[0] == "make":
            target = words[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (document, command)
        elif words[0].startswith("scripts/"):
            assert (ROOT / words[0]).is_file(), (document, command)


def test_every_benchmark_shown_answers_help():
    shown = {c.split()[1] for _, c in COMMANDS if c.startswith(".venv/bin/python benchmarks/")}
    assert shown
    for script in sorted(shown):
        result = subprocess.run(
            [sys.executable, str(ROOT / script), "--help"],
            capture_output=True,
            text=True,
            timeout=HELP_TIMEOUT_S,
            cwd=ROOT,
        )
        assert result.returncode == 0, (script, result.stderr[-2000:])


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document):
    text = document.read_text()
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            anchors = {_anchor(h) for h in HEADING.findall(linked.read_text())}
            assert anchor in anchors, f"{document.name}: no heading for #{anchor} in {linked.name}"


def test_the_documents_name_no_issue_numbers_dates_of_work_or_commits():
    for document in DOCUMENTS:
        text = document.read_text()
        assert not re.search(r"(?<![\w/&])#\d+\b", text), f"{document.name}: an issue number"
        assert not re.search(r"\bissue\b", text, re.I), f"{document.name}: an issue"
        commit = re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", text)
        assert commit is None, f"{document.name}: a commit hash {commit.group(0)}"
