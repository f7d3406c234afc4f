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

/// Seeds skipped by the CI blocks, with the reason: none. (The fault
/// model used to corrupt a frame in both wrappers it crosses, so two
/// opposite flips of one bit column could cancel in the checksum and
/// deliver a changed payload: seeds 148, 471, 882 and 3952. Only one
/// wrapper corrupts now, and those seeds run as [`DOUBLE_CORRUPTION_SEEDS`].)
const KNOWN_BUGS: &[(u64, &str)] = &[];

/// Seeds whose corrupted frames once defeated the checksum (two flips per
/// frame); they must pass like any other.
const DOUBLE_CORRUPTION_SEEDS: [u64; 4] = [148, 471, 882, 3952];

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

/// Fixed: a duplicate ACK repeating a small window cancelled the persist
/// (SWS override) timer while data waited behind sender SWS avoidance with
/// nothing in flight; with the peer's window update lost, the connection
/// waited forever (found once the fault model corrupted frames once).
const SWS_PERSIST_SEEDS: [u64; 1] = [997];

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

/// Regression test: a small window with data waiting and nothing in
/// flight keeps its persist timer through duplicate ACKs.
#[test]
fn regression_small_window_keeps_its_persist_timer() {
    expect_ok(&SWS_PERSIST_SEEDS, "small-window-persist-cancelled");
}

/// Regression test: full-sized segments with SACK blocks fit the MTU.
#[test]
fn regression_sack_options_fit_the_mtu() {
    expect_ok(&SACK_MTU_SEEDS, "sack-options-overflow-mtu");
}

/// Regression test: a corrupted frame carries one flipped bit, which the
/// checksum catches (the seeds where two flips cancelled).
#[test]
fn regression_one_corruption_per_frame() {
    expect_ok(&DOUBLE_CORRUPTION_SEEDS, "corruption-defeats-checksum");
}
