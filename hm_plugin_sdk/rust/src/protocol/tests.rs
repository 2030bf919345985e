//! Encoding and decoding against bytes produced by Python's msgspec.
//!
//! The vectors were generated with msgspec 0.22 from the structs of
//! `hm_plugin_sdk/protocol.py` (`msgspec.msgpack.Encoder().encode(...)`), with
//! the values the tests below assert. Keys of free-form dicts are sorted because
//! the Rust types keep them in a `BTreeMap`; the `*_FUTURE` and `*_UNKNOWN_KIND`
//! vectors encode plain dicts with extra keys, as a newer hm could send.

use std::collections::BTreeMap;

use super::*;
use crate::context::Stream;
use crate::msgpack::{DecodeError, Value};

const MANIFEST: &str = "85a46e616d65a464656d6fa776657273696f6ea5312e322e33ac6361706162696c69746965739483a46b696e64ad737465705f6578656375746f72a772756e6e65727392a472757374a27273a764656661756c74c384a46b696e64ae6c6966656379636c655f686f6f6ba57068617365a66265666f7265a66576656e747391ad6275696c645f73746172746564aa74696d656f75745f6d73ccfa82a46b696e64ae6c6966656379636c655f686f6f6ba57068617365a5616674657284a46b696e64aa737562636f6d6d616e64a47665726292a472757374a56772656574a773756d6d617279a6477265657473a4617267739383a46e616d65a46e616d65a87265717569726564c3a468656c70a377686f84a46e616d65a574696d6573a46b696e64a66f7074696f6ea474797065a3696e74a764656661756c740183a46e616d65a573686f7574a46b696e64a4666c6167a474797065a4626f6f6cab6465736372697074696f6ea7412064656d6f2eab72657175697265735f686da73e3d302e312e30";
const MANIFEST_MIN: &str = "83a46e616d65a16da776657273696f6ea5302e312e30ac6361706162696c69746965739182a46b696e64ad737465705f6578656375746f72a772756e6e65727391a178";
const EXECUTOR_INPUT: &str = "86a672756e5f6964a27231a47374657087a36b6579a161a3636d64a76563686f206869a56c6162656ca141a5696d616765a6616c70696e65a672756e6e6572a472757374ab72756e6e65725f6172677382a46465657081a46c6973749601fecb400c000000000000c0c3a173a16e03af74696d656f75745f7365636f6e6473cb4004000000000000a3656e7682a141a131a142a374776fa9776f726b7370616365a42f772f61ae626173655f776f726b7370616365a72f772f62617365ac70726f6a6563745f726f6f74a22f70";
const EXECUTOR_INPUT_MIN: &str = "83a672756e5f6964a27231a47374657082a36b6579a161a3636d64a26869a9776f726b7370616365a22f77";
const EXECUTOR_INPUT_FUTURE: &str = "85a672756e5f6964a27231a6667574757265920181a178c0a47374657084a36b6579a161a3636d64a26869af74696d656f75745f7365636f6e647303a96e65775f6669656c64c3a9776f726b7370616365a22f7707ab6e6f6e2d737472206b6579";
const STEP_RESULT: &str = "83a9657869745f636f646501a6737461747573a66661696c6564a76d657373616765a4626f6f6d";
const STEP_RESULT_OK: &str = "81a9657869745f636f646500";
const STEP_RESULT_NEG: &str = "82a9657869745f636f6465d1fed4a6737461747573a974696d65645f6f7574";
const STEP_RESULT_IMAGE: &str = "82a9657869745f636f646500a8696d6167655f6964ab7368613235363a61623132";
const EXECUTOR_INPUT_RESOLVE: &str = "84a672756e5f6964a27231a47374657083a36b6579a161a3636d64a26869a5696d616765a6616c70696e65a9776f726b7370616365a22f77ac7265736f6c76655f6f6e6c79c3";
const HOOK_EVENT_BUILD_STARTED: &str = "82a57068617365a66265666f7265a56576656e7486a46b696e64ad6275696c645f73746172746564a672756e5f6964a172a27473a174a8706970656c696e65a170a5737465707303ac70726f6a6563745f726f6f74a22f70";
const HOOK_EVENT_STEP_QUEUED: &str = "82a57068617365a56166746572a56576656e7484a46b696e64ab737465705f717565756564a672756e5f6964a172a27473a174a8737465705f6b6579a161";
const HOOK_EVENT_STEP_STARTED: &str = "82a57068617365a66265666f7265a56576656e7486a46b696e64ac737465705f73746172746564a672756e5f6964a172a27473a174a8737465705f6b6579a161a672756e6e6572a472757374a6706c7567696ea27278";
const HOOK_EVENT_STEP_LOG: &str = "82a57068617365a56166746572a56576656e7487a46b696e64a8737465705f6c6f67a672756e5f6964a172a27473a174a8737465705f6b6579a161a673747265616da6737464657272a46c696e65a46f6f7073a87265706c61796564c2";
const HOOK_EVENT_STEP_LOG_REPLAYED: &str = "82a57068617365a56166746572a56576656e7487a46b696e64a8737465705f6c6f67a672756e5f6964a172a27473a174a8737465705f6b6579a161a673747265616da67374646f7574a46c696e65a36f6c64a87265706c61796564c3";
// step_log and step_finished as hosts sent them before `replayed` and `cache` were added.
const HOOK_EVENT_STEP_LOG_OLD: &str = "82a57068617365a56166746572a56576656e7486a46b696e64a8737465705f6c6f67a672756e5f6964a172a27473a174a8737465705f6b6579a161a673747265616da6737464657272a46c696e65a46f6f7073";
const HOOK_EVENT_STEP_FINISHED: &str = "82a57068617365a66265666f7265a56576656e7489a46b696e64ad737465705f66696e6973686564a672756e5f6964a172a27473a174a8737465705f6b6579a161a6737461747573a7736b6970706564a9657869745f636f6465c0ab6475726174696f6e5f6d73ce00011170a76d657373616765a16da56361636865c0";
const HOOK_EVENT_STEP_FINISHED_HIT: &str = "82a57068617365a56166746572a56576656e7489a46b696e64ad737465705f66696e6973686564a672756e5f6964a172a27473a174a8737465705f6b6579a161a6737461747573a9737563636565646564a9657869745f636f646500ab6475726174696f6e5f6d7305a76d657373616765c0a56361636865a3686974";
const HOOK_EVENT_STEP_FINISHED_OLD: &str = "82a57068617365a66265666f7265a56576656e7488a46b696e64ad737465705f66696e6973686564a672756e5f6964a172a27473a174a8737465705f6b6579a161a6737461747573a7736b6970706564a9657869745f636f6465c0ab6475726174696f6e5f6d73ce00011170a76d657373616765a16d";
const HOOK_EVENT_CHAIN_FAILED: &str = "82a57068617365a56166746572a56576656e7487a46b696e64ac636861696e5f6661696c6564a672756e5f6964a172a27473a174a5636861696ea163a8737465705f6b6579a161a6726561736f6ea3776879a9657869745f636f6465c0";
const HOOK_EVENT_CHAIN_FAILED_EXIT: &str = "82a57068617365a56166746572a56576656e7487a46b696e64ac636861696e5f6661696c6564a672756e5f6964a172a27473a174a5636861696ea163a8737465705f6b6579a161a6726561736f6ea3776879a9657869745f636f646503";
// As a host from before `chain_failed.exit_code` sent it: no such key.
const HOOK_EVENT_CHAIN_FAILED_NO_EXIT: &str = "82a57068617365a56166746572a56576656e7486a46b696e64ac636861696e5f6661696c6564a672756e5f6964a172a27473a174a5636861696ea163a8737465705f6b6579a161a6726561736f6ea3776879";
const HOOK_EVENT_BUILD_FINISHED: &str = "82a57068617365a66265666f7265a56576656e7487a46b696e64ae6275696c645f66696e6973686564a672756e5f6964a172a27473a174a6737461747573a761626f72746564a9657869745f636f646506ab6475726174696f6e5f6d7305a76d657373616765c0";
const HOOK_EVENT_PLUGIN_EVENT: &str = "82a57068617365a56166746572a56576656e7487a46b696e64ac706c7567696e5f6576656e74a672756e5f6964a172a27473a174a6706c7567696ea2706ca46e616d65a16ea46461746181a16b920102a8737465705f6b6579a161";
const HOOK_EVENT_UNKNOWN_KIND: &str = "82a57068617365a56166746572a56576656e7485a46b696e64ad63616368655f65766963746564a672756e5f6964a172a27473a174a8737465705f6b6579a161a562797465730a";
const HOOK_CONTINUE: &str = "80";
const HOOK_ABORT: &str = "82a46b696e64a561626f7274a6726561736f6ea26e6f";
const SUBCOMMAND_INPUT: &str = "83a9766572625f7061746892a472757374a56772656574a46172677384a46e616d65a5576f726c64a36f7074c0a573686f7574c2a574696d657302a3656e7681a4484f4d45a52f726f6f74";
const EXIT_INFO: &str = "82a9657869745f636f646503a76d657373616765a3627965";
const EXIT_INFO_DEFAULT: &str = "80";
const PLUGIN_ERROR: &str = "87a4636f6465af696d6167655f6e6f745f666f756e64a76d657373616765a86e6f20696d616765a57469746c65a154aa73756767657374696f6ea770756c6c206974a9726574727961626c65c3ae72657472795f636f6d6d616e647391a6686d2072756ea7646f635f75726ca968747470733a2f2f78";
const PLUGIN_ERROR_MIN: &str = "82a4636f6465a163a76d657373616765a16d";
const PLUGIN_EVENT: &str = "82a46e616d65a870726f6772657373a46461746187a162c4020001a3626967cf0000010000000000a166cb3fe0000000000000a36e6567ffa26f6bc3a370637432a173d92878787878787878787878787878787878787878787878787878787878787878787878787878787878";

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0);
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Decodes the vector, checks it re-encodes to the very same bytes, returns the message.
fn exact<M: Message + std::fmt::Debug>(vector: &str) -> M {
    let bytes = hex(vector);
    let m = M::from_msgpack(&bytes).unwrap_or_else(|e| panic!("{}: {e}", M::NAME));
    assert_eq!(m.to_msgpack(), bytes, "{} re-encoded differently: {m:?}", M::NAME);
    m
}

fn event(vector: &str) -> (Phase, BuildEvent) {
    let e: HookEvent = exact(vector);
    (e.phase, e.event)
}

#[test]
fn manifest_built_with_the_builders_matches_msgspec() {
    let built = PluginManifest::new("demo", "1.2.3")
        .with_description("A demo.")
        .with_requires_hm(">=0.1.0")
        .with_capability(Capability::default_step_executor(["rust", "rs"]))
        .with_capability(Capability::lifecycle_hook_for(Phase::Before, ["build_started"], 250))
        .with_capability(Capability::lifecycle_hook(Phase::After))
        .with_capability(
            Capability::subcommand(["rust", "greet"], "Greets")
                .with_arg(ArgSpec::positional("name").required().with_help("who"))
                .with_arg(ArgSpec::option("times", ArgType::Int).with_default(1i64))
                .with_arg(ArgSpec::flag("shout")),
        );
    assert_eq!(built.to_msgpack(), hex(MANIFEST));
    assert_eq!(exact::<PluginManifest>(MANIFEST), built);
    let min: PluginManifest = exact(MANIFEST_MIN);
    assert_eq!(min.capabilities, vec![Capability::step_executor(["x"])]);
    assert_eq!(min.description, "");
    assert_eq!(min.requires_hm, None);
}

#[test]
fn arg_spec_fields() {
    let m: PluginManifest = exact(MANIFEST);
    let Capability::Subcommand { verb, summary, args } = &m.capabilities[3] else { panic!("{m:?}") };
    assert_eq!(verb, &["rust", "greet"]);
    assert_eq!(summary, "Greets");
    assert_eq!((&args[0].kind, &args[0].ty, args[0].required), (&ArgKind::Positional, &ArgType::String, true));
    assert_eq!(args[1].ty, ArgType::Int);
    assert_eq!(args[1].default, Some(ArgValue::Int(1)));
    assert_eq!((&args[2].kind, &args[2].ty), (&ArgKind::Flag, &ArgType::Bool));
    let Capability::LifecycleHook { timeout_ms, events, .. } = &m.capabilities[2] else { panic!() };
    assert_eq!((*timeout_ms, events.len()), (5000, 0));
}

#[test]
fn executor_input_full_and_minimal() {
    let i: ExecutorInput = exact(EXECUTOR_INPUT);
    assert_eq!(i.run_id, "r1");
    assert_eq!((i.step.key.as_str(), i.step.cmd.as_str()), ("a", "echo hi"));
    assert_eq!(i.step.label.as_deref(), Some("A"));
    assert_eq!(i.step.image.as_deref(), Some("alpine"));
    assert_eq!(i.step.runner.as_deref(), Some("rust"));
    assert_eq!(i.step.timeout_seconds, Some(2.5));
    assert_eq!(i.step.runner_args["n"], Value::Int(3));
    let list = i.step.runner_args["deep"].get("list").unwrap();
    assert_eq!(
        list,
        &Value::Array(vec![
            Value::Int(1),
            Value::Int(-2),
            Value::Float(3.5),
            Value::Nil,
            Value::Bool(true),
            Value::from("s")
        ])
    );
    assert_eq!(i.env, BTreeMap::from([("A".into(), "1".into()), ("B".into(), "two".into())]));
    assert_eq!(i.workspace, "/w/a");
    assert_eq!(i.base_workspace.as_deref(), Some("/w/base"));
    assert_eq!(i.project_root, "/p");

    let min: ExecutorInput = exact(EXECUTOR_INPUT_MIN);
    assert_eq!(min, ExecutorInput::new("r1", StepSpec::new("a", "hi"), "/w"));
}

#[test]
fn unknown_keys_are_ignored_and_ints_accepted_as_floats() {
    let i = ExecutorInput::from_msgpack(&hex(EXECUTOR_INPUT_FUTURE)).unwrap();
    assert_eq!(i.step.key, "a");
    assert_eq!(i.step.timeout_seconds, Some(3.0));
    assert_eq!(i.workspace, "/w");
}

#[test]
fn step_results() {
    assert_eq!(exact::<StepResult>(STEP_RESULT), StepResult::exit(1).with_message("boom"));
    assert_eq!(exact::<StepResult>(STEP_RESULT_OK), StepResult::success());
    assert_eq!(exact::<StepResult>(STEP_RESULT_NEG), StepResult::exit(-300).with_status(StepStatus::TimedOut));
    assert_eq!(exact::<StepResult>(STEP_RESULT_IMAGE), StepResult::success().with_image_id("sha256:ab12"));
}

#[test]
fn a_resolve_only_input() {
    let i: ExecutorInput = exact(EXECUTOR_INPUT_RESOLVE);
    assert!(i.resolve_only);
    assert_eq!(i.step.image.as_deref(), Some("alpine"));
    assert!(!exact::<ExecutorInput>(EXECUTOR_INPUT_MIN).resolve_only);
}

#[test]
fn every_build_event_kind() {
    let (phase, e) = event(HOOK_EVENT_BUILD_STARTED);
    assert_eq!(phase, Phase::Before);
    let mut want = BuildStarted::new("r", "t", "p", 3);
    want.project_root = "/p".into();
    assert_eq!(e, BuildEvent::BuildStarted(want));
    assert_eq!((e.kind(), e.run_id(), e.ts(), e.step_key()), ("build_started", "r", "t", None));

    let (phase, e) = event(HOOK_EVENT_STEP_QUEUED);
    assert_eq!(phase, Phase::After);
    assert_eq!(e, BuildEvent::StepQueued(StepQueued::new("r", "t", "a")));

    let (_, e) = event(HOOK_EVENT_STEP_STARTED);
    assert_eq!(e, BuildEvent::StepStarted(StepStarted::new("r", "t", "a", "rust", "rx")));

    let (_, e) = event(HOOK_EVENT_STEP_LOG);
    assert_eq!(e, BuildEvent::StepLog(StepLog::new("r", "t", "a", Stream::Stderr, "oops")));
    assert_eq!(e.step_key(), Some("a"));

    let (_, e) = event(HOOK_EVENT_STEP_LOG_REPLAYED);
    let mut want = StepLog::new("r", "t", "a", Stream::Stdout, "old");
    want.replayed = true;
    assert_eq!(e, BuildEvent::StepLog(want));

    let (_, e) = event(HOOK_EVENT_STEP_FINISHED);
    let mut want = StepFinished::new("r", "t", "a", StepFinishedStatus::Skipped);
    want.duration_ms = 70000;
    want.message = Some("m".into());
    assert_eq!(e, BuildEvent::StepFinished(want.clone()));

    let (_, e) = event(HOOK_EVENT_STEP_FINISHED_HIT);
    let mut hit = StepFinished::new("r", "t", "a", StepFinishedStatus::Succeeded);
    hit.exit_code = Some(0);
    hit.duration_ms = 5;
    hit.cache = Some(CacheOutcome::Hit);
    assert_eq!(e, BuildEvent::StepFinished(hit));

    // An older host leaves `replayed` and `cache` out: they decode to their defaults.
    let old = HookEvent::from_msgpack(&hex(HOOK_EVENT_STEP_LOG_OLD)).unwrap();
    assert_eq!(old.event, BuildEvent::StepLog(StepLog::new("r", "t", "a", Stream::Stderr, "oops")));
    let old = HookEvent::from_msgpack(&hex(HOOK_EVENT_STEP_FINISHED_OLD)).unwrap();
    assert_eq!(old.event, BuildEvent::StepFinished(want));

    let (_, e) = event(HOOK_EVENT_CHAIN_FAILED);
    assert_eq!(e, BuildEvent::ChainFailed(ChainFailed::new("r", "t", "c", "a", "why")));

    let (_, e) = event(HOOK_EVENT_CHAIN_FAILED_EXIT);
    let mut want = ChainFailed::new("r", "t", "c", "a", "why");
    want.exit_code = Some(3);
    assert_eq!(e, BuildEvent::ChainFailed(want));

    let old = HookEvent::from_msgpack(&hex(HOOK_EVENT_CHAIN_FAILED_NO_EXIT)).unwrap();
    assert_eq!(old.event, BuildEvent::ChainFailed(ChainFailed::new("r", "t", "c", "a", "why")));

    let (_, e) = event(HOOK_EVENT_BUILD_FINISHED);
    let mut want = BuildFinished::new("r", "t", BuildStatus::Aborted, 6);
    want.duration_ms = 5;
    assert_eq!(e, BuildEvent::BuildFinished(want));

    let (_, e) = event(HOOK_EVENT_PLUGIN_EVENT);
    let mut want = PluginEventEmitted::new("r", "t", "pl", "n");
    want.data.insert("k".into(), Value::Array(vec![Value::Int(1), Value::Int(2)]));
    want.step_key = Some("a".into());
    assert_eq!(e, BuildEvent::PluginEvent(want));
}

#[test]
fn unknown_event_kinds_decode_to_other() {
    let e = HookEvent::from_msgpack(&hex(HOOK_EVENT_UNKNOWN_KIND)).unwrap();
    assert_eq!(e.event.kind(), "cache_evicted");
    assert_eq!((e.event.run_id(), e.event.ts(), e.event.step_key()), ("r", "t", Some("a")));
    let BuildEvent::Other { fields, .. } = &e.event else { panic!("{e:?}") };
    assert_eq!(fields["bytes"], Value::Int(10));
    // Other re-encodes with kind first and the rest in key order; it decodes back the same.
    assert_eq!(HookEvent::from_msgpack(&e.to_msgpack()).unwrap(), e);
}

#[test]
fn unknown_statuses_decode_to_other() {
    let mut v = crate::msgpack::decode(&hex(HOOK_EVENT_BUILD_FINISHED)).unwrap();
    let Value::Map(entries) = &mut v else { panic!() };
    let Value::Map(event) = &mut entries[1].1 else { panic!() };
    for (k, val) in event.iter_mut() {
        if k.as_str() == Some("status") {
            *val = Value::from("exploded");
        }
    }
    let e = <HookEvent as Message>::from_value(v).unwrap();
    let BuildEvent::BuildFinished(f) = e.event else { panic!() };
    assert_eq!(f.status, BuildStatus::Other("exploded".into()));
}

#[test]
fn hook_outcomes() {
    assert_eq!(exact::<HookOutcome>(HOOK_CONTINUE), HookOutcome::Continue);
    assert_eq!(exact::<HookOutcome>(HOOK_ABORT), HookOutcome::abort("no"));
    // The C fixtures spell "continue" out; that decodes too.
    assert_eq!(HookOutcome::from_msgpack(b"\x81\xa4kind\xa8continue").unwrap(), HookOutcome::Continue);
    assert!(HookOutcome::from_msgpack(b"\x81\xa4kind\xa5maybe").is_err());
}

#[test]
fn subcommand_input_and_exit_info() {
    let i: SubcommandInput = exact(SUBCOMMAND_INPUT);
    assert_eq!(i.verb_path, ["rust", "greet"]);
    assert_eq!(i.str("name"), Some("World"));
    assert_eq!(i.int("times"), Some(2));
    assert!(!i.flag("shout"));
    assert_eq!(i.args["opt"], ArgValue::Nil);
    assert_eq!(i.env["HOME"], "/root");
    assert_eq!(exact::<ExitInfo>(EXIT_INFO), ExitInfo::exit(3).with_message("bye"));
    assert_eq!(exact::<ExitInfo>(EXIT_INFO_DEFAULT), ExitInfo::success());
}

#[test]
fn plugin_errors_and_events() {
    let full = PluginError::new("image_not_found", "no image")
        .with_title("T")
        .with_suggestion("pull it")
        .with_retry_command("hm run")
        .with_doc_url("https://x");
    assert_eq!(exact::<PluginError>(PLUGIN_ERROR), full);
    assert_eq!(exact::<PluginError>(PLUGIN_ERROR_MIN), PluginError::new("c", "m"));

    let event = PluginEvent::new("progress")
        .with("b", Value::Bin(vec![0, 1]))
        .with("big", 1i64 << 40)
        .with("f", 0.5)
        .with("neg", -1i64)
        .with("ok", true)
        .with("pct", 50i64)
        .with("s", "x".repeat(40));
    assert_eq!(exact::<PluginEvent>(PLUGIN_EVENT), event);
}

#[test]
fn schema_errors_name_the_field() {
    let err = |bytes: &[u8]| ExecutorInput::from_msgpack(bytes).unwrap_err().to_string();
    // {"run_id": "r", "workspace": "/w"}: no step.
    assert_eq!(err(b"\x82\xa6run_id\xa1r\xa9workspace\xa2/w"), "ExecutorInput: missing required field `step`");
    // step.key is an int.
    assert_eq!(
        err(b"\x83\xa6run_id\xa1r\xa9workspace\xa2/w\xa4step\x82\xa3key\x01\xa3cmd\xa1c"),
        "ExecutorInput.step.key: expected str, found int"
    );
    // env value is not a str.
    assert_eq!(
        err(b"\x84\xa6run_id\xa1r\xa9workspace\xa2/w\xa4step\x82\xa3key\xa1k\xa3cmd\xa1c\xa3env\x81\xa1A\xc3"),
        "ExecutorInput.env.A: expected str, found bool"
    );
    assert_eq!(err(b"\x93\x01\x02\x03"), "ExecutorInput: expected map, found array");
    let manifest_err =
        PluginManifest::from_msgpack(b"\x83\xa4name\xa1m\xa7version\xa11\xaccapabilities\x91\x81\xa4kind\xa4nope")
            .unwrap_err();
    assert!(manifest_err.to_string().starts_with("PluginManifest.capabilities[0].kind: unknown capability kind"));
    assert!(matches!(
        StepResult::from_msgpack(b"\x81\xa9exit_code\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
        Err(DecodeError::Schema { .. })
    ));
}

/// Truncations and single-byte corruptions of every vector: each decodes or errors, never panics.
#[test]
fn corrupted_vectors_never_panic() {
    fn all<M: Message>(bytes: &[u8]) {
        let _ = M::from_msgpack(bytes);
    }
    let vectors = [
        MANIFEST,
        MANIFEST_MIN,
        EXECUTOR_INPUT,
        EXECUTOR_INPUT_MIN,
        EXECUTOR_INPUT_FUTURE,
        STEP_RESULT,
        STEP_RESULT_IMAGE,
        EXECUTOR_INPUT_RESOLVE,
        HOOK_EVENT_BUILD_STARTED,
        HOOK_EVENT_STEP_FINISHED,
        HOOK_EVENT_STEP_FINISHED_HIT,
        HOOK_EVENT_STEP_LOG_REPLAYED,
        HOOK_EVENT_PLUGIN_EVENT,
        HOOK_EVENT_UNKNOWN_KIND,
        HOOK_ABORT,
        SUBCOMMAND_INPUT,
        EXIT_INFO,
        PLUGIN_ERROR,
        PLUGIN_EVENT,
    ];
    for v in vectors {
        let bytes = hex(v);
        for cut in 0..bytes.len() {
            assert!(HookEvent::from_msgpack(&bytes[..cut]).is_err(), "a truncated vector must not decode");
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x10, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                all::<PluginManifest>(&b);
                all::<ExecutorInput>(&b);
                all::<StepResult>(&b);
                all::<HookEvent>(&b);
                all::<HookOutcome>(&b);
                all::<SubcommandInput>(&b);
                all::<ExitInfo>(&b);
                all::<PluginError>(&b);
                all::<PluginEvent>(&b);
            }
        }
    }
}

/// msgspec's encoding of a step executor that runs images and declares runner_args
/// (`StepExecutorCapability.images`, `.runner_args` in hm_plugin_sdk/protocol.py).
const MANIFEST_IMAGES: &str = "83a46e616d65a2766da776657273696f6ea5312e302e30ac6361706162696c69746965739184a46b696e64ad737465705f6578656375746f72a772756e6e65727391a2766da6696d61676573c3ab72756e6e65725f617267739284a46e616d65a76e6574776f726ba5747970657391a6737472696e67a763686f6963657392a46e6f6e65a4686f7374a468656c70a36e657483a46e616d65a463707573a5747970657392a66e756d626572a3696e74a77061747465726ea65b302d395d2b";

#[test]
fn a_runner_that_runs_images_and_declares_runner_args_matches_msgspec() {
    let network = RunnerArgSpec::new("network", [RunnerArgType::String]).with_choices(["none", "host"]).with_help("net");
    let cpus = RunnerArgSpec::new("cpus", [RunnerArgType::Number, RunnerArgType::Int]).with_pattern("[0-9]+");
    let built = PluginManifest::new("vm", "1.0.0").with_capability(
        Capability::step_executor(["vm"]).with_images().with_runner_arg(network).with_runner_arg(cpus),
    );
    assert_eq!(built.to_msgpack(), hex(MANIFEST_IMAGES));
    assert_eq!(exact::<PluginManifest>(MANIFEST_IMAGES), built);
    // without them, the defaults: no images, runner_args left to the runner, no image ids
    match &exact::<PluginManifest>(MANIFEST_MIN).capabilities[0] {
        Capability::StepExecutor { images, runner_args, resolves_images, .. } => {
            assert!(!*images && runner_args.is_none() && !*resolves_images)
        }
        other => panic!("not a step executor: {other:?}"),
    }
}

/// msgspec's encoding of a step executor that resolves its images to ids
/// (`StepExecutorCapability.resolves_images`, for hm's step cache).
const MANIFEST_RESOLVES: &str = "83a46e616d65a2766da776657273696f6ea5312e302e30ac6361706162696c69746965739184a46b696e64ad737465705f6578656375746f72a772756e6e65727391a2766da6696d61676573c3af7265736f6c7665735f696d61676573c3";

#[test]
fn a_runner_that_resolves_images_matches_msgspec() {
    let built = PluginManifest::new("vm", "1.0.0")
        .with_capability(Capability::step_executor(["vm"]).with_images().with_resolved_images());
    assert_eq!(built.to_msgpack(), hex(MANIFEST_RESOLVES));
    assert_eq!(exact::<PluginManifest>(MANIFEST_RESOLVES), built);
}
