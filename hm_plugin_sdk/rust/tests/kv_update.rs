//! ABI 1.1 in the crate: `kv_compare_and_swap` and the `kv_update` retry helper,
//! checked against `struct_size` on a host table cut to 1.0.

use std::mem::offset_of;

use hm_plugin_sdk::sys::HostApi;
use hm_plugin_sdk::testing::{CallKind, MockHost};
use hm_plugin_sdk::{HostError, KvScope};

fn count(bytes: Option<&[u8]>) -> u64 {
    bytes.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0)
}

#[test]
fn compare_and_swap_tells_absent_from_empty_and_reports_conflicts() {
    let host = MockHost::new();
    host.call(CallKind::Subcommand, |ctx| {
        assert_eq!(ctx.kv_compare_and_swap(KvScope::Plugin, "k", None, "1"), Ok(true));
        assert_eq!(ctx.kv_compare_and_swap(KvScope::Plugin, "k", None, "2"), Ok(false));
        assert_eq!(ctx.kv_compare_and_swap(KvScope::Plugin, "k", Some(b""), "2"), Ok(false));
        assert_eq!(ctx.kv_compare_and_swap(KvScope::Plugin, "k", Some(b"1"), ""), Ok(true));
        assert_eq!(ctx.kv_compare_and_swap(KvScope::Plugin, "k", Some(b""), "3"), Ok(true));
        assert_eq!(ctx.kv_get(KvScope::Plugin, "k"), Ok(Some(b"3".to_vec())));
        let outside = ctx.kv_compare_and_swap(KvScope::Build, "k", None, "1").unwrap_err();
        assert_eq!(outside.status(), Some(hm_plugin_sdk::Status::Unavailable));
    });
}

#[test]
fn kv_update_counts_exactly_from_many_threads() {
    let host = MockHost::new();
    host.call(CallKind::Step, |ctx| {
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        ctx.kv_update(KvScope::Build, "n", |old| (count(old) + 1).to_string().into_bytes()).unwrap();
                    }
                });
            }
        });
        assert_eq!(count(ctx.kv_get(KvScope::Build, "n").unwrap().as_deref()), 400);
    });
}

#[test]
fn on_a_1_0_host_table_the_new_entries_are_unavailable_not_a_crash() {
    let host = MockHost::new().with_table(offset_of!(HostApi, kv_compare_and_swap) as u32, 0);
    host.call(CallKind::Step, |ctx| {
        let mut ran = false;
        let err = ctx.kv_update(KvScope::Plugin, "n", |_| {
            ran = true;
            Vec::new()
        });
        assert!(matches!(err, Err(HostError::Unavailable { function: "kv_compare_and_swap", host_minor: 0 })));
        assert!(!ran, "nothing is read or computed when the host cannot swap");
        assert!(matches!(ctx.session_output(b"x"), Err(HostError::Unavailable { function: "session_output", .. })));
        assert!(ctx.kv_set(KvScope::Plugin, "n", "1").is_ok()); // the 1.0 entries still work
    });
}
