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
//! segment of it at each delay line (virtual time), `MTCP_SIM_EDGE=1` adds
//! the connection edge cases (refused, abort in SYN-SENT).
//!
//! The engine bugs this simulation found (SACK blocks overflowing the MTU,
//! an RTO with a zero send window sending nothing, RTO inflated by stale
//! timestamp echoes) are fixed; their seeds run in every CI pass as
//! regression tests below.

#[path = "sim/delay.rs"]
mod delay;
#[path = "sim/edge.rs"]
mod edge;
#[path = "sim/harness.rs"]
mod harness;

use harness::{run, Options};

/// Seeds per CI test function (four of them run in parallel).
const SEEDS_PER_TEST: u64 = 250;

/// Seeds skipped by the CI blocks, with the reason. Only a limit of the
/// fault model is left here: the engine bugs found by the simulation are
/// fixed and their seeds run as regression tests. (471 and 882: the trace
/// shows the segment holding the wrong byte with a payload hash on RX that
/// no TX of it had, accepted by the checksum.)
const KNOWN_BUGS: &[(u64, &str)] = &[
    (471, SIM_DOUBLE_CORRUPTION),
    (882, SIM_DOUBLE_CORRUPTION),
    (3952, SIM_DOUBLE_CORRUPTION),
    // Since TIME-WAIT moved to compact entries the segment schedule of this
    // seed changed; the trace shows conn 11's segment at seq 570416246
    // with a payload hash on RX different from TX, checksum passing.
    (148, SIM_DOUBLE_CORRUPTION),
];

/// A limit of the fault model, not of the engine: a frame crosses two
/// `FaultyQueue`s (the sender's TX, the receiver's RX) and may be corrupted
/// by both; two flips of the same bit column in opposite directions leave
/// the ones'-complement checksum unchanged, so a corrupted payload is
/// delivered (the trace shows the segment's payload hash changing between
/// TX and RX). Real links have the same blind spot.
const SIM_DOUBLE_CORRUPTION: &str = "fault-model-double-corruption-defeats-checksum";

/// Fixed: an RTO with SND.WND = 0 and data in flight sent nothing (the
/// go-back-N loop found no usable window and the persist timer was not
/// armed), so the connection timed out. A zero window is reached by a
/// reordered stale ACK (same SEQ/ACK, window 0) that overwrites the newer
/// window (RFC 9293's SND.WL1/WL2 test allows it). Now the RTO probes.
const RTO_ZERO_WINDOW_SEEDS: [u64; 4] = [719, 1939, 2385, 3683];

/// Fixed: over a lossy path (~18 % both ways) an ACK of a retransmission
/// echoed a TS.Recent from before the RTO (RFC 7323 §4.3) and SRTT/RTTVAR
/// jumped to tens of seconds; echoes older than the last RTO are now
/// ignored for RTT.
const STALE_ECHO_SEEDS: [u64; 2] = [1711, 3321];

/// Fixed: a segment left past the peer's largest right edge (checked on
/// every segment of every seed, `sim/edge.rs`): the retransmission at
/// SND.UNA was a full MSS when less was outstanding, so it carried new data
/// past SND.MAX and the window.
const RIGHT_EDGE_SEEDS: [u64; 1] = [355];

/// Fixed: full-sized segments carrying SACK blocks exceeded the MTU and
/// were lost (RFC 9293 MUST-16); these seeds hit it most.
const SACK_MTU_SEEDS: [u64; 3] = [11, 3, 7];

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
    let mut edge_checks = 0u64;
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
            edge_cases: false,
        };
        match std::panic::catch_unwind(|| run(seed, &opts)) {
            Ok(Ok(s)) => {
                bytes += s.bytes;
                conns += s.conns;
                edge_checks += s.edge_checks;
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
        "sim block {block}: {n} seeds ({skipped} known-bug seeds skipped), {conns} connections, {bytes} bytes, {edge_checks} segments checked against the right edge, {:?}",
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
        edge_cases: std::env::var("MTCP_SIM_EDGE").is_ok_and(|v| v == "1"),
    };
    match run(seed, &opts) {
        Ok(s) => println!("seed {seed}: ok: {s:?}"),
        Err(report) => panic!("{report}\n  replay: {}", replay_command(seed, queues)),
    }
}

fn expect_ok(seeds: &[u64], what: &str) {
    for &seed in seeds {
        if let Err(report) = run(seed, &Options::default()) {
            panic!(
                "{what} regressed:\n{report}\n  replay: {}",
                replay_command(seed, None)
            );
        }
    }
}

/// Regression test: an RTO with a zero send window and data in flight.
#[test]
fn regression_rto_with_zero_window() {
    expect_ok(&RTO_ZERO_WINDOW_SEEDS, "rto-with-zero-window");
}

/// Regression test: RTO inflated by stale timestamp echoes.
#[test]
fn regression_rto_inflated_by_stale_timestamp_echo() {
    expect_ok(&STALE_ECHO_SEEDS, "rto-inflated-by-stale-timestamp-echo");
}

/// Regression test: nothing is sent past the peer's right edge.
#[test]
fn regression_nothing_past_the_right_edge() {
    expect_ok(&RIGHT_EDGE_SEEDS, "segment-past-the-right-edge");
}

/// Regression test: full-sized segments with SACK blocks fit the MTU.
#[test]
fn regression_sack_options_fit_the_mtu() {
    expect_ok(&SACK_MTU_SEEDS, "sack-options-overflow-mtu");
}

/// Replays [`SIM_DOUBLE_CORRUPTION`]'s seeds with `MTCP_SIM_KNOWN_BUGS=1`
/// (they may deliver a corrupted byte: a limit of the fault model).
#[test]
fn known_sim_double_corruption() {
    if std::env::var("MTCP_SIM_KNOWN_BUGS").is_ok_and(|v| v == "1") {
        expect_ok(&[148, 471, 882, 3952], SIM_DOUBLE_CORRUPTION);
    }
}
