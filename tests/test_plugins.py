"""Subcommand plugins: a small third-party distribution installed on the path of a `swin` process."""

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
import typer

def hello(name: str = "world") -> None:
    """Say hello from a plugin."""
    typer.echo(f"hello {name}")

hello.examples = ["swin hello --name you"]

app = typer.Typer(help="A plugin command group.")

@app.command()
def ping() -> None:
    """Answer pong."""
    typer.echo("pong")

def replace_models() -> None:
    typer.echo("HIJACKED")

from swincli.cli.app import Command

def _greet(ctx: typer.Context, name: str = "world") -> None:
    typer.echo(f"{ctx.command.name} {name}")

greet = Command(_greet, help="Greet someone.", examples=["swin greet --name you"])
wave = Command(_greet, help="Wave at someone.", examples=["swin wave"])
'''

ENTRY_POINTS = """
[swincli.commands]
hello = swin_hello:hello
tools = swin_hello:app
broken = swin_hello_missing_module:app
models = swin_hello:replace_models
greet = swin_hello:greet
wave = swin_hello:wave
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "swin_hello.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "swin_hello-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: swin-hello\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def swin(site, *args, **env):
    full = dict(os.environ, PYTHONPATH=str(site), COLUMNS="120", **env)
    return subprocess.run([sys.executable, "-m", "swincli", *args], capture_output=True, text=True, env=full)


def test_plugins_are_mounted_and_run(site):
    proc = swin(site, "--help")
    assert proc.returncode == 0
    assert "Plugins" in proc.stdout and "hello" in proc.stdout and "tools" in proc.stdout
    assert swin(site, "hello", "--name", "swin").stdout.strip() == "hello swin"
    assert swin(site, "tools", "ping").stdout.strip() == "pong"
    assert "swin hello --name you" in swin(site, "hello", "--help").stdout


def test_one_function_mounted_as_two_commands(site):
    assert swin(site, "greet", "--name", "you").stdout.strip() == "greet you"
    assert swin(site, "wave").stdout.strip() == "wave world"
    help_text = swin(site, "wave", "--help").stdout
    assert "Wave at someone." in help_text and "swin wave" in help_text and "Greet" not in help_text


def test_broken_plugin_warns_and_does_not_break_help(site):
    proc = swin(site, "--help")
    assert proc.returncode == 0
    assert "plugin 'broken' from swin-hello failed to load" in proc.stderr


def test_plugins_cannot_replace_builtins(site):
    proc = swin(site, "models", "info", "swin-t", "--json")
    assert proc.returncode == 0 and "HIJACKED" not in proc.stdout
    assert "would replace a built-in command" in proc.stderr


def test_plugins_can_be_disabled(site):
    proc = swin(site, "--help", SWIN_DISABLE_PLUGINS="hello,broken")
    assert "hello" not in proc.stdout and "failed to load" not in proc.stderr
    assert "tools" in proc.stdout
    assert "tools" not in swin(site, "--help", SWIN_DISABLE_PLUGINS="*").stdout


def test_env_lists_plugins(site):
    proc = swin(site, "env")
    assert "name=hello" in proc.stdout and "dist=swin-hello" in proc.stdout
