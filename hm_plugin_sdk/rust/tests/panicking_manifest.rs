//! Panics outside capabilities: in `manifest` (a `panic` PluginError) and in
//! `Default::default` (the plugin refuses to load; nothing unwinds into the host).

use std::sync::atomic::{AtomicBool, Ordering};

use hm_plugin_sdk::testing::MockHost;
use hm_plugin_sdk::*;

static FAIL_DEFAULT: AtomicBool = AtomicBool::new(false);

struct Grumpy;

impl Default for Grumpy {
    fn default() -> Self {
        if FAIL_DEFAULT.load(Ordering::SeqCst) {
            panic!("cannot even start");
        }
        Grumpy
    }
}

impl Plugin for Grumpy {
    fn manifest(&self) -> PluginManifest {
        panic!("no manifest for you")
    }
}

hm_plugin!(Grumpy);

#[test]
fn panics_in_manifest_and_default_are_contained() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let err = plugin.manifest().unwrap_err();
    assert_eq!(err.status(), Some(Status::Failed));
    let e = err.plugin_error().unwrap();
    assert_eq!((e.code.as_str(), e.message.as_str()), ("panic", "no manifest for you"));

    FAIL_DEFAULT.store(true, Ordering::SeqCst);
    assert!(host.load(hm_load_plugin).is_err());
}
