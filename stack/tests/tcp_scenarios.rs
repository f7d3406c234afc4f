//! Packetdrill-like regression scripts (see `mtcp_stack::testing::scenario`),
//! one test per file in `tests/scenarios/`.

use mtcp_stack::testing::run_script;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let script = include_str!(concat!("scenarios/", stringify!($name), ".pkt"));
                if let Err(e) = run_script(script) {
                    panic!("{}.pkt {e}", stringify!($name));
                }
            }
        )*

        #[test]
        fn every_script_is_listed() {
            let listed = [$(concat!(stringify!($name), ".pkt")),*];
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios");
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(listed.contains(&name.as_str()), "{name} is not listed in tcp_scenarios.rs");
            }
        }
    };
}

scenarios!(
    handshake_passive,
    handshake_active,
    delayed_ack,
    rto_backoff,
    fast_retransmit,
    fin_simultaneous,
    half_close,
    rst_rfc5961,
    zero_window_probe,
    time_wait_reuse,
    syn_cookie,
    paws,
    connect_refused,
    retry_limit,
    syn_retries,
    nagle,
    keepalive,
    rst_closed_port,
    sack_recovery,
    challenge_ack_rate,
    window_scale,
    listen_backlog,
);
