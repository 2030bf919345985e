//! A plugin that implements no capability: every capability answers
//! `HM_ERR_UNSUPPORTED` with no output, before its input is even decoded.

use hm_plugin_sdk::sys;
use hm_plugin_sdk::testing::{MockHost, Op};
use hm_plugin_sdk::*;

#[derive(Default)]
struct Bare;

impl Plugin for Bare {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("bare", "0.0.1").with_capability(Capability::step_executor(["bare"]))
    }
}

hm_plugin!(Bare);

#[test]
fn every_capability_is_unsupported() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    for op in [Op::ExecuteStep, Op::OnHookEvent, Op::RunSubcommand] {
        assert_eq!(plugin.call_raw(op, b"\xc1 not msgpack"), (sys::ERR_UNSUPPORTED, Vec::new()), "{op:?}");
    }
    let err = plugin.run_subcommand(&SubcommandInput::new(["bare"])).unwrap_err();
    assert_eq!((err.status(), err.plugin_error()), (Some(Status::Unsupported), None));
}
