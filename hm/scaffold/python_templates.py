"""Templates of a Python stdio plugin project (``{{name}}`` placeholders, filled
by ``create_project``): a descriptor and a script written with
``hm_plugin_sdk.stdio``; nothing to build."""

from __future__ import annotations

DESCRIPTOR = """\
# {{name}} — an hm plugin in Python, speaking the stdio protocol (docs/stdio-protocol.md).
# hm starts this command when it first needs the plugin (plugin.py: the file next to this one).
command = ["python3", "plugin.py"]
protocol = "1.0"
"""

_TOP = '''\
"""{{name}} — an hm plugin. Check: `hm plugin check {{name}}.plugin.toml`.

hm_plugin_sdk.stdio (shipped with hm, which puts it on this script's
PYTHONPATH) speaks the protocol; messages are plain dicts with the fields of the
schemas in hm_plugin_sdk/protocol.py. `print` goes to hm's log, never to the
protocol.
"""

from hm_plugin_sdk.stdio import Call, Failure, Plugin

plugin = Plugin("{{name}}", "0.1.0", description="TODO: what {{name}} does")
'''

_EXECUTOR = '''

@plugin.runner("{{name}}")
def execute_step(inp: dict, call: Call) -> dict:
    """Run one step (ExecutorInput -> StepResult). Output goes through emit_step_log."""
    step = inp["step"]
    if step["cmd"] == "fail":
        raise Failure("{{ident}}_failed", "the step asked to fail", suggestion="change its cmd")
    call.emit_step_log(f"{{name}} runs {step['key']}: {step['cmd']}\\n")
    return {"exit_code": 0}
'''

_HOOK = '''

@plugin.hook("after", events=["build_started", "build_finished"], timeout_ms=5000)
def on_hook_event(event: dict, call: Call) -> dict:
    """See a build event (HookEvent -> HookOutcome). An `after` hook only observes."""
    call.log(f"{{name}} saw {event['event']['kind']}")
    if event["event"]["kind"] == "never":
        raise Failure("{{ident}}_failed", "unreachable")
    return {"kind": "continue"}
'''

_SUBCOMMAND = '''

@plugin.subcommand(
    ["{{name}}"],
    summary="say hello",
    args=[{"name": "who", "kind": "option", "type": "string", "default": "world", "help": "whom to greet"}],
)
def run_subcommand(inp: dict, call: Call) -> dict:
    """`hm {{name}} [--who NAME]` (SubcommandInput -> ExitInfo)."""
    if inp["args"].get("who") == "nobody":
        raise Failure("{{ident}}_failed", "nobody to greet", suggestion="pass --who NAME")
    call.write_stdout(f"hello, {inp['args'].get('who')}\\n")
    return {"exit_code": 0}
'''

_BOTTOM = """

if __name__ == "__main__":
    plugin.serve()
"""

README = """\
# {{name}}

An [hm](https://example.invalid/hm) plugin in Python: `plugin.py`, started by
hm as `{{name}}.plugin.toml` says. Nothing to build.

    hm plugin check {{name}}.plugin.toml     # the conformance suite
    hm plugin install .                      # into your plugin folder (--project: this project's)

The protocol is in hm's docs/stdio-protocol.md; the helper in hm_plugin_sdk/stdio.py.
"""


def source(capability: str) -> str:
    body = {"executor": _EXECUTOR, "hook": _HOOK, "subcommand": _SUBCOMMAND}[capability]
    return _TOP + body + _BOTTOM
