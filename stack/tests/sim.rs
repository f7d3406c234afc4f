//! Deterministic whole-stack simulation: two sides of `Stack`s over the
//! in-memory NIC in virtual time, many connections with random sizes, random
//! fault mixes (loss, duplication, reordering, corruption, delay with
//! jitter), both directions, half-close, abort and close with unread data.
//!
//! Every byte must arrive exactly once and in order, every connection must
//! end cleanly (or with a reset where one side aborted), nothing may panic,
//! and every pool must be full again at the end.
//!
//! A failing seed prints the command that replays it:
//! `MTCP_SIM_SEED=N cargo test -p mtcp-stack --test sim replay -- --nocapture`.
//! `MTCP_SIM_SEEDS=N` runs N seeds per CI test instead of the default.
//!
//! Reducing a failure with `replay`: `MTCP_SIM_QUEUES=2` forces two queues
//! per port, `MTCP_SIM_ONLY=K` keeps only connection K of the plan,
//! `MTCP_SIM_TRACE=K` prints connection K's state changes and every TCP
//! segment of it at each delay line (virtual time), `MTCP_SIM_FULL_MTU=1`
//! lifts the workaround for the SACK/MTU bug, `MTCP_SIM_EDGE=1` adds the
//! connection edge cases (refused, abort in SYN-SENT).

#[path = "sim/delay.rs"]
mod delay;
#[path = "sim/harness.rs"]
mod harness;

use harness::{run, Options};

/// Seeds per CI test function (four of them run in parallel).
const SEEDS_PER_TEST: u64 = 250;

/// Seeds that fail because of known engine bugs, with the bug's name. The
/// CI tests skip them; each bug has its own regression test below, run with
/// `MTCP_SIM_KNOWN_BUGS=1`.
const KNOWN_BUGS: &[(u64, &str)] = &[
    (719, BUG_RTO_ZERO_WINDOW),
    (1939, BUG_RTO_ZERO_WINDOW),
    (2385, BUG_RTO_ZERO_WINDOW),
    (3683, BUG_RTO_ZERO_WINDOW),
    (1711, BUG_STALE_ECHO_RTO),
    (3321, BUG_STALE_ECHO_RTO),
    (3952, SIM_DOUBLE_CORRUPTION),
];

/// A limit of the fault model, not of the engine: a frame crosses two
/// `FaultyQueue`s (the sender's TX, the receiver's RX) and may be corrupted
/// by both; two flips of the same bit column in opposite directions leave
/// the ones'-complement checksum unchanged, so a corrupted payload is
/// delivered (the trace shows the segment's payload hash changing between
/// TX and RX). Real links have the same blind spot.
const SIM_DOUBLE_CORRUPTION: &str = "fault-model-double-corruption-defeats-checksum";

/// An RTO with SND.WND = 0 and data in flight sends nothing: `on_rto` sets
/// SND.NXT = SND.UNA, the go-back-N loop in `output` finds no usable window,
/// and the persist timer is not armed because SND.MAX > SND.UNA. Every RTO
/// until `data_retries` emits nothing, so the connection times out. A zero
/// window is reached by a reordered stale ACK (same SEQ/ACK, window 0) that
/// overwrites the newer window (RFC 9293's SND.WL1/WL2 test allows it).
const BUG_RTO_ZERO_WINDOW: &str = "rto-with-zero-window-sends-nothing";

/// Not a correctness bug but a stall: over a lossy path (~18 % both ways),
/// an ACK of a retransmission echoes a TS.Recent from before the RTO (RFC
/// 7323 §4.3), `echo_rtt` accepts it (anything up to 60 s), SRTT/RTTVAR
/// jump to tens of seconds and the RTO stays near `rto_max` while the next
/// losses come; a 260 KB transfer then needs more than 30 virtual minutes.
const BUG_STALE_ECHO_RTO: &str = "rto-inflated-by-stale-timestamp-echo";

/// See `harness::SACK_MSS_WORKAROUND`.
const BUG_SACK_MTU: &str = "sack-options-overflow-mtu";

fn replay_command(seed: u64, queues: Option<usize>) -> String {
    let q = queues.map_or(String::new(), |q| format!("MTCP_SIM_QUEUES={q} "));
    format!("MTCP_SIM_SEED={seed} {q}cargo test -p mtcp-stack --test sim replay -- --nocapture")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs seeds `block * n .. (block + 1) * n`, panicking with every failure.
fn run_block(block: u64, queues: Option<usize>) {
    let n = env_u64("MTCP_SIM_SEEDS").unwrap_or(SEEDS_PER_TEST);
    let t0 = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut bytes = 0u64;
    let mut conns = 0usize;
    let mut skipped = 0;
    for seed in block * n..(block + 1) * n {
        if queues.is_none() && KNOWN_BUGS.iter().any(|&(s, _)| s == seed) {
            skipped += 1;
            continue;
        }
        let opts = Options {
            queues,
            verbose: false,
            only: None,
            trace: None,
            full_mtu: false,
            edge_cases: false,
        };
        match std::panic::catch_unwind(|| run(seed, &opts)) {
            Ok(Ok(s)) => {
                bytes += s.bytes;
                conns += s.conns;
            }
            Ok(Err(report)) => failures.push(format!(
                "{report}\n  replay: {}\n",
                replay_command(seed, queues)
            )),
            Err(_) => failures.push(format!(
                "seed {seed}: panicked\n  replay: {}\n",
                replay_command(seed, queues)
            )),
        }
    }
    println!(
        "sim block {block}: {n} seeds ({skipped} known-bug seeds skipped), {conns} connections, {bytes} bytes, {:?}",
        t0.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {n} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn seeds_block_0() {
    run_block(0, None);
}

#[test]
fn seeds_block_1() {
    run_block(1, None);
}

#[test]
fn seeds_block_2() {
    run_block(2, None);
}

#[test]
fn seeds_block_3() {
    run_block(3, None);
}

/// Two queues per port: two stacks per side, flows steered by RSS.
#[test]
fn seeds_two_queues() {
    let n = env_u64("MTCP_SIM_SEEDS").map_or(40, |n| n / 4);
    let mut failures = Vec::new();
    for seed in 10_000..10_000 + n {
        let opts = Options {
            queues: Some(2),
            verbose: false,
            only: None,
            trace: None,
            full_mtu: false,
            edge_cases: false,
        };
        if let Err(report) = run(seed, &opts) {
            failures.push(format!(
                "{report}\n  replay: {}\n",
                replay_command(seed, Some(2))
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Connection edge cases on top of the usual mix: connects to a port nobody
/// listens on (`ConnectionRefused`) and active opens aborted in SYN-SENT.
#[test]
fn seeds_edge_cases() {
    let n = env_u64("MTCP_SIM_SEEDS").map_or(60, |n| n / 4);
    let mut failures = Vec::new();
    for seed in 20_000..20_000 + n {
        let opts = Options {
            edge_cases: true,
            ..Options::default()
        };
        if let Err(report) = run(seed, &opts) {
            failures.push(format!(
                "{report}\n  replay: MTCP_SIM_EDGE=1 {}\n",
                replay_command(seed, None)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays `MTCP_SIM_SEED` (seed 0 when unset) verbosely;
/// `MTCP_SIM_QUEUES` forces the queue count.
#[test]
fn replay() {
    let seed = env_u64("MTCP_SIM_SEED").unwrap_or(0);
    let queues = env_u64("MTCP_SIM_QUEUES").map(|q| q as usize);
    let opts = Options {
        queues,
        verbose: std::env::var("MTCP_SIM_SEED").is_ok(),
        only: env_u64("MTCP_SIM_ONLY").map(|k| k as usize),
        trace: env_u64("MTCP_SIM_TRACE").map(|k| k as usize),
        full_mtu: std::env::var("MTCP_SIM_FULL_MTU").is_ok_and(|v| v == "1"),
        edge_cases: std::env::var("MTCP_SIM_EDGE").is_ok_and(|v| v == "1"),
    };
    match run(seed, &opts) {
        Ok(s) => println!("seed {seed}: ok: {s:?}"),
        Err(report) => panic!("{report}\n  replay: {}", replay_command(seed, queues)),
    }
}

fn known_bugs_enabled() -> bool {
    std::env::var("MTCP_SIM_KNOWN_BUGS").is_ok_and(|v| v == "1")
}

fn expect_fixed(seed: u64, opts: &Options, bug: &str) {
    if let Err(report) = run(seed, opts) {
        panic!("known bug {bug} still reproduces:\n{report}");
    }
}

/// Regression test for [`BUG_RTO_ZERO_WINDOW`] (fails until it is fixed).
#[test]
fn known_bug_rto_with_zero_window_sends_nothing() {
    if !known_bugs_enabled() {
        return;
    }
    for &(seed, bug) in KNOWN_BUGS {
        if bug == BUG_RTO_ZERO_WINDOW {
            expect_fixed(seed, &Options::default(), bug);
        }
    }
}

/// Regression test for [`BUG_STALE_ECHO_RTO`] (fails until it is fixed).
#[test]
fn known_bug_rto_inflated_by_stale_timestamp_echo() {
    if !known_bugs_enabled() {
        return;
    }
    for &(seed, bug) in KNOWN_BUGS {
        if bug == BUG_STALE_ECHO_RTO {
            expect_fixed(seed, &Options::default(), bug);
        }
    }
}

/// Replays [`SIM_DOUBLE_CORRUPTION`]'s seed (fails until the fault model
/// corrupts a frame at most once).
#[test]
fn known_sim_double_corruption() {
    if !known_bugs_enabled() {
        return;
    }
    for &(seed, bug) in KNOWN_BUGS {
        if bug == SIM_DOUBLE_CORRUPTION {
            expect_fixed(seed, &Options::default(), bug);
        }
    }
}

/// Regression test for [`BUG_SACK_MTU`]: the full 1500-byte MTU (fails until
/// it is fixed; then drop `SACK_MSS_WORKAROUND`).
#[test]
fn known_bug_sack_options_overflow_mtu() {
    if !known_bugs_enabled() {
        return;
    }
    let opts = Options {
        full_mtu: true,
        ..Options::default()
    };
    for seed in [11, 3, 7] {
        expect_fixed(seed, &opts, BUG_SACK_MTU);
    }
}
