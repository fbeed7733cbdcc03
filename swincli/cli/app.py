"""The ``swin`` Typer app: one factory, every subcommand mounted from the ``swincli.commands`` group.

An entry point resolves to a ``typer.Typer`` (mounted as a command group), a function (mounted as
one command; an ``examples`` attribute, a list of command lines, becomes its help epilog), or a
:class:`Command` (a function with its own help and examples, so one function can back two commands
that share one option list, as ``train`` and ``finetune`` do). Built-ins
are entry points of the swincli distribution; a plugin from another distribution may not replace one,
and a plugin that fails to import is reported on stderr and skipped, so ``swin --help`` always works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from swincli import api
from swincli.cli.options import examples


@dataclass(frozen=True)
class Command:
    """A function mounted as one command with this help and these examples.

    Help and examples live here rather than on the function, so the same function can be mounted
    under two names (it tells them apart with ``ctx.command.name``) without copying its options.
    """

    function: Callable[..., Any]
    help: str
    examples: Sequence[str] = ()


def typer_factory(**kwargs) -> typer.Typer:
    """Shared settings for the root app and every command group."""
    settings = dict(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    settings.update(kwargs)
    return typer.Typer(**settings)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"swin {api.__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """[bold]swin[/bold]: train, fine-tune, predict, profile and convert Swin Transformer V1/V2 models.

    Set SWIN_DEBUG=1 to see full tracebacks.
    """


def build_app(warn=None) -> typer.Typer:
    """The root app with every discovered command mounted; ``warn`` receives one line per skipped plugin."""
    warn = warn or (lambda line: typer.echo(f"warning: {line}", err=True))
    app = typer_factory(
        add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
        help=_root.__doc__,
        epilog=examples(
            "swin models list 'swinv2*'",
            "swin models info swin-t",
            "swin convert swin_tiny_patch4_window7_224.pth -o swin-t.safetensors",
            "swin predict cat.jpg --model swinv2-b",
            "swin env",
        ),
    )
    app.callback()(_root)
    mounted: dict[str, Any] = {}
    specs, off = api.command_plugins()
    for spec in specs:
        if not spec.builtin and ("*" in off or spec.name in off):
            continue
        if spec.name in mounted:
            owner = mounted[spec.name]
            why = "a built-in command" if owner.builtin else f"the plugin from {owner.dist}"
            warn(f"plugin {spec.name!r} from {spec.dist} would replace {why}; ignored")
            continue
        try:
            target = spec.entry_point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
            warn(f"plugin {spec.name!r} from {spec.dist} failed to load ({type(exc).__name__}: {exc}); skipped")
            continue
        panel = None if spec.builtin else "Plugins"
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=spec.name, rich_help_panel=panel)
        elif isinstance(target, Command):
            epilog = examples(*target.examples) if target.examples else None
            app.command(name=spec.name, help=target.help, epilog=epilog, rich_help_panel=panel)(target.function)
        elif callable(target):
            epilog = examples(*target.examples) if getattr(target, "examples", None) else None
            app.command(name=spec.name, rich_help_panel=panel, epilog=epilog)(target)
        else:
            warn(f"plugin {spec.name!r} from {spec.dist} is neither a typer.Typer, a Command nor a function; skipped")
            continue
        mounted[spec.name] = spec
    return app
