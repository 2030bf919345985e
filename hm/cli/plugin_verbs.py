"""Plugin subcommands as real click commands.

Each ``subcommand`` capability's verb path (``["db", "migrate"]``) becomes nested
click groups and a command whose parameters come from the spec's typed
arguments, so hm parses and validates them (a missing required argument or a bad
int is a usage error, exit 2) before the plugin is called. The plugin receives
``SubcommandInput {verb_path, args, env}``; its ``ExitInfo.message`` is printed
(stdout on success, stderr otherwise) and hm exits with ``exit_code`` unchanged.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import click

from hm.cli.group import write_commands

if TYPE_CHECKING:
    from hm.runtime import PluginRecord, Registry
from hm_plugin_sdk.protocol import ArgSpec, SubcommandCapability, SubcommandInput

_TYPES: dict[str, click.ParamType] = {"string": click.STRING, "int": click.INT, "bool": click.BOOL}


def _param(arg: ArgSpec) -> click.Parameter:
    pyname = arg.name.replace("-", "_")
    # Pass `default` only when there is one: click (8.3) treats an explicit None as a
    # default and would stop enforcing `required`.
    default: dict[str, Any] = {} if arg.default is None else {"default": arg.default}
    if arg.kind == "positional":
        return click.Argument([pyname], type=_TYPES[arg.type], required=arg.required, **default)
    if arg.kind == "flag":
        return click.Option(
            [f"--{arg.name}/--no-{arg.name}", pyname], default=bool(arg.default), help=arg.help, show_default=True
        )
    return click.Option(
        [f"--{arg.name}", pyname],
        type=_TYPES[arg.type],
        required=arg.required,
        help=arg.help,
        show_default=arg.default is not None,
        **default,
    )


def make_command(registry: Registry, rec: PluginRecord, cap: SubcommandCapability) -> click.Command:
    names = {a.name.replace("-", "_"): a.name for a in cap.args}

    def callback(**kwargs: Any) -> None:
        from hm.cli import output
        from hm.cli.session import SESSION
        from hm.errors import PluginCallError
        from hm.runtime import HostServices

        SESSION.reap_leftovers = False  # a plugin's command may start what outlives it
        plugin = registry.load(rec)
        inp = SubcommandInput(
            verb_path=list(cap.verb), args={names[k]: v for k, v in kwargs.items()}, env=dict(os.environ)
        )
        info = plugin.run_subcommand(inp, HostServices(project_root=SESSION.project_root))
        if not 0 <= info.exit_code <= 255:
            # an exit status is one byte: 256 would read as success
            raise PluginCallError(
                f"run_subcommand returned exit code {info.exit_code}, outside 0-255",
                path=plugin.path,
                plugin=plugin.name,
                code="bad_exit_code",
                hint="this is a bug in the plugin; report it to its author",
            )
        if info.message:
            (output.stdout if info.exit_code == 0 else output.stderr).print(info.message, markup=False)
        raise click.exceptions.Exit(info.exit_code)

    help_text = f"{cap.summary or 'A plugin command.'} [plugin {rec.name}]"
    return click.Command(
        cap.verb[-1], params=[_param(a) for a in cap.args], callback=callback, help=help_text, short_help=help_text
    )


class _VerbGroup(click.Group):
    """An intermediate verb (``db`` of ``db migrate``); keeps its children in declaration order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_commands(self, ctx, formatter)


def plugin_commands(registry: Registry, reserved: set[str]) -> tuple[dict[str, click.Command], list[str]]:
    """Top-level plugin commands, and notes on verbs that were not obeyed.

    A verb whose first word is a built-in command (``reserved``) is reported, not
    added: built-in commands always win.
    """
    top: dict[str, click.Command] = {}
    notes: list[str] = []
    for verb, (rec, cap) in sorted(registry.subcommands().items()):
        if verb[0] in reserved:
            notes.append(f"plugin {rec.label} claims `hm {' '.join(verb)}`, a built-in command; it is ignored")
            continue
        parent: MutableMapping[str, click.Command] = top
        group: click.Group | None = None
        for depth, word in enumerate(verb[:-1]):
            node = parent.get(word)
            if node is None:
                node = _VerbGroup(word, help=f"Commands of plugin {rec.name}.")
                if group is None:
                    top[word] = node
                else:
                    group.add_command(node)
            if not isinstance(node, click.Group):
                notes.append(f"plugin {rec.label}: `hm {' '.join(verb[: depth + 1])}` is both a command and a group")
                break
            group = node
            parent = node.commands
        else:
            cmd = make_command(registry, rec, cap)
            if group is None:
                top.setdefault(verb[-1], cmd)
            elif verb[-1] not in group.commands:
                group.add_command(cmd)
    return top, notes
