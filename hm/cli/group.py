"""The root command group: built-in commands first, then plugin verbs, then extensions.

Built-in commands always win over a plugin verb or an ``hm-NAME`` extension of
the same name; a plugin verb wins over an extension. Plugin verbs come from the
cached manifests (no plugin code runs to build ``hm --help``); extensions are
found by name only when asked for, and listed (never run) by ``hm --help``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click
from typer.core import TyperGroup

from hm.cli import extensions
from hm.cli.session import SESSION
from hm.errors import UsageError

#: Global options that take a value, and those that do not (kept in sync with app.root).
_VALUE_OPTIONS = {"-C", "--project"}
_FLAG_OPTIONS = {"-v", "--verbose"}


def split_globals(args: list[str]) -> tuple[list[str], str | None, list[str]]:
    """``(global options, NAME, arguments after NAME)``; NAME is None if there is none."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _FLAG_OPTIONS or arg.startswith("--project="):
            i += 1
        elif arg in _VALUE_OPTIONS:
            i += 2
        else:
            break
    if i >= len(args) or args[i].startswith("-"):
        return args[:i], None, args[i:]
    return args[:i], args[i], args[i + 1 :]


def apply_globals(global_args: list[str]) -> None:
    """Set the session's options from the global flags (before click parses them)."""
    i = 0
    while i < len(global_args):
        arg = global_args[i]
        if arg in _FLAG_OPTIONS:
            SESSION.verbose = True
        elif arg in _VALUE_OPTIONS and i + 1 < len(global_args):
            SESSION.project_dir = Path(global_args[i + 1])
            i += 1
        elif arg.startswith("--project="):
            SESSION.project_dir = Path(arg.split("=", 1)[1])
        i += 1


#: Large enough that click never cuts a command's first sentence with "...";
#: ``write_dl`` wraps it under the command's name instead.
_NO_CUT = 10_000


def short_help(cmd: click.Command) -> str:
    """The first sentence of a command's help, whole."""
    return cmd.get_short_help_str(limit=_NO_CUT)


def write_commands(group: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The "Commands" section of ``group``'s help, each description whole."""
    rows = [(n, short_help(c)) for n in group.list_commands(ctx) if (c := group.get_command(ctx, n)) and not c.hidden]
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class HelpGroup(TyperGroup):
    """A command group in hm's style: ``--help`` shows each command's first sentence whole
    (click cuts it at the terminal's width with "..."), and an unknown command is one
    ``error:`` line with a did-you-mean (click prints usage, a "Try" line and ``Error:``)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_commands(self, ctx, formatter)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing and not name.startswith("-"):
            raise self.unknown(ctx, name)
        return super().resolve_command(ctx, args)

    #: What this group's ``--help`` lists, for the unknown-command hint.
    lists = "its commands"

    def unknown(self, ctx: click.Context, name: str) -> UsageError:
        """The error for ``hm … NAME`` when this group has no command NAME."""
        matches = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(m) for m in matches)}? " if matches else ""
        return UsageError(
            f"unknown command '{name}'",
            # `hm plugin: unknown command …`; for the root, "hm: " would say nothing.
            where=ctx.command_path if ctx.parent is not None else None,
            hint=f"{hint}`{ctx.command_path} --help` lists {self.lists}",
        )


class HmGroup(HelpGroup):
    lists = "the commands, plugin commands and extensions"
    _plugin_cache: tuple[dict[str, click.Command], list[str]] | None = None

    def plugin_commands(self) -> tuple[dict[str, click.Command], list[str]]:
        if self._plugin_cache is None:
            from hm.cli.plugin_verbs import plugin_commands

            self._plugin_cache = plugin_commands(SESSION.registry, set(self.commands))
        return self._plugin_cache

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = list(self.commands)
        names += [n for n in self.plugin_commands()[0] if n not in names]
        names += [n for n in extensions.list_extensions() if n not in names]
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        _session_from(ctx)
        plugin_cmd = self.plugin_commands()[0].get(cmd_name)
        if plugin_cmd is not None:
            return plugin_cmd
        path = extensions.find_extension(cmd_name)
        return _extension_command(cmd_name, path) if path else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _session_from(ctx)
        builtins = [(n, c) for n, c in self.commands.items() if not c.hidden]
        plugin_cmds, notes = self.plugin_commands()
        exts = extensions.list_extensions()
        taken = set(self.commands) | set(plugin_cmds)
        sections = [
            ("Commands", [(n, short_help(c)) for n, c in builtins]),
            (
                "Plugin commands",
                [(n, short_help(c)) for n, c in plugin_cmds.items() if n not in self.commands],
            ),
            ("Extensions", [(n, f"runs {p}") for n, p in exts.items() if n not in taken]),
        ]
        for title, rows in sections:
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        if notes:
            with formatter.section("Notes"):
                for note in notes:
                    formatter.write_text(note)


def _session_from(ctx: click.Context) -> None:
    """Commands are resolved before the root callback runs: take -C from the parsed options."""
    project = ctx.params.get("project")
    if project is not None and SESSION.project_dir is None:
        SESSION.project_dir = Path(project)


def _extension_command(name: str, path: Path) -> click.Command:
    """A stand-in so click can route ``hm NAME`` (main() runs extensions before click does)."""

    @click.pass_context
    def callback(ctx: click.Context) -> None:
        info = extensions.context(project_root=SESSION.project_root, fmt="human", verbose=SESSION.verbose)
        code = extensions.run_extension(path, list(ctx.args), info)
        raise click.exceptions.Exit(code)

    return click.Command(
        name,
        callback=callback,
        help=f"Extension: runs {path}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )
