//! Short real runs of the monoio (io_uring) and smoltcp peers, and of
//! `compare` with them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use benches::monoio_peer::MonoioSystem;
use benches::smoltcp_peer::SmoltcpSystem;
use benches::{Measurement, Metrics, PollMode, Scenario, ScenarioConfig, System};

fn config(scenario: Scenario, conns: usize) -> ScenarioConfig {
    let mut c = ScenarioConfig::new(scenario);
    c.duration = Duration::from_secs(1);
    c.warmup = Duration::from_millis(200);
    c.conns = conns;
    // The tests share two cores: park when idle.
    c.poll = PollMode::Adaptive;
    c
}

/// monoio needs io_uring; where the kernel refuses it, the system says so
/// and these runs cannot happen.
fn monoio() -> Option<MonoioSystem> {
    let m = MonoioSystem::new();
    match m.available() {
        Ok(()) => Some(m),
        Err(why) => {
            assert!(why.contains("io_uring"), "{why}");
            eprintln!("monoio unavailable here: {why}");
            None
        }
    }
}

fn check_echo(m: &Measurement, system: &str, conns: usize) {
    assert_eq!((m.system.as_str(), m.conns, m.cores), (system, conns, 1));
    let Metrics::Echo { tx_per_s, latency } = m.metrics else {
        panic!("{m:?}")
    };
    // Even a loaded two-core machine does thousands of loopback round
    // trips in a second.
    assert!(tx_per_s > 100.0, "{m:?}");
    assert!(latency.p50_us > 0.0, "{m:?}");
    assert!(latency.p50_us <= latency.p99_us, "{m:?}");
    assert!(latency.p99_us <= latency.p999_us, "{m:?}");
    assert!((m.seconds - 1.0).abs() < 1e-6, "{m:?}");
}

fn check_bulk(m: &Measurement, system: &str) {
    assert_eq!((m.system.as_str(), m.conns, m.size), (system, 1, 65536));
    let Metrics::Bulk { gbit_per_s } = m.metrics else {
        panic!("{m:?}")
    };
    // Sent and received byte counts were already checked equal by the run.
    assert!(gbit_per_s > 0.01, "{m:?}");
}

#[test]
fn monoio_echo_three_connections() {
    let Some(sys) = monoio() else { return };
    let m = sys.run(&config(Scenario::Echo, 3)).unwrap();
    check_echo(&m, "monoio", 3);
}

#[test]
fn monoio_bulk_moves_bytes() {
    let Some(sys) = monoio() else { return };
    let m = sys.run(&config(Scenario::Bulk, 1)).unwrap();
    check_bulk(&m, "monoio");
}

#[test]
fn monoio_connect_cycles() {
    let Some(sys) = monoio() else { return };
    let m = sys.run(&config(Scenario::Connect, 2)).unwrap();
    assert_eq!(m.system, "monoio");
    let Metrics::Connect {
        conns_per_s,
        latency,
        errors,
        ..
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert!(conns_per_s > 10.0, "{m:?}");
    assert_eq!(errors, 0, "{m:?}");
    assert!(latency.p50_us <= latency.p99_us, "{m:?}");
}

#[test]
fn monoio_udp_three_sockets() {
    let Some(sys) = monoio() else { return };
    let m = sys.run(&config(Scenario::Udp, 3)).unwrap();
    assert_eq!((m.system.as_str(), m.conns), ("monoio", 3));
    let Metrics::Udp {
        tx_per_s,
        latency,
        lost,
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert!(tx_per_s > 100.0, "{m:?}");
    assert!(
        latency.p50_us > 0.0 && latency.p50_us <= latency.p99_us,
        "{m:?}"
    );
    // Loopback loses next to nothing at this rate.
    assert!((lost as f64) < tx_per_s * 0.01, "{m:?}");
}

#[test]
fn monoio_says_which_scenarios_it_skips() {
    let sys = MonoioSystem::new();
    for s in [
        Scenario::Echo,
        Scenario::Connect,
        Scenario::Bulk,
        Scenario::Udp,
    ] {
        assert_eq!(sys.supports(s), Ok(()));
    }
    let why = sys.supports(Scenario::Idle).unwrap_err();
    assert!(why.contains("helper process"), "{why}");
    assert_eq!(sys.run(&config(Scenario::Idle, 10)).unwrap_err(), why);
}

#[test]
fn smoltcp_echo_four_connections() {
    let m = SmoltcpSystem::new()
        .run(&config(Scenario::Echo, 4))
        .unwrap();
    check_echo(&m, "smoltcp", 4);
}

// smoltcp 0.12 panicked now and then here ("attempt to subtract sequence
// numbers with underflow" in `Socket::last_scaled_window`, smoltcp issue
// #1048); 0.13.1 rejects bytes outside the receive window (smoltcp #1079).
#[test]
fn smoltcp_bulk_moves_bytes() {
    let m = SmoltcpSystem::new()
        .run(&config(Scenario::Bulk, 1))
        .unwrap();
    check_bulk(&m, "smoltcp");
}

#[test]
fn smoltcp_connect_cycles_without_time_wait() {
    let m = SmoltcpSystem::new()
        .run(&config(Scenario::Connect, 3))
        .unwrap();
    assert_eq!((m.system.as_str(), m.conns), ("smoltcp", 3));
    let Metrics::Connect {
        conns_per_s,
        time_wait,
        latency,
        errors,
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert!(conns_per_s > 10.0, "{m:?}");
    // Server sockets in TIME-WAIT go back to listening at once.
    assert!(!time_wait, "{m:?}");
    assert_eq!(errors, 0, "{m:?}");
    assert!(
        latency.p50_us > 0.0 && latency.p50_us <= latency.p99_us,
        "{m:?}"
    );
}

#[test]
fn smoltcp_says_which_scenarios_it_skips() {
    let sys = SmoltcpSystem::new();
    assert_eq!(sys.available(), Ok(()));
    for s in [Scenario::Echo, Scenario::Connect, Scenario::Bulk] {
        assert_eq!(sys.supports(s), Ok(()));
    }
    for s in [Scenario::Idle, Scenario::Udp] {
        let why = sys.supports(s).unwrap_err();
        assert_eq!(sys.run(&config(s, 10)).unwrap_err(), why);
    }
    let mut two = config(Scenario::Echo, 2);
    two.cores = 2;
    assert!(sys.run(&two).unwrap_err().contains("one core"));
}

#[test]
fn compare_runs_the_new_peers_and_lists_what_they_skip() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_compare"));
    let out = Command::new(&exe)
        .args([
            "echo",
            "--seconds",
            "0.5",
            "--conns",
            "2",
            "--json",
            "--systems",
            "smoltcp,monoio",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Measurement> = stdout
        .lines()
        .map(|l| Measurement::from_json_line(l).unwrap())
        .collect();
    assert!(
        stdout.starts_with(
            r#"{"scenario":"echo","system":"smoltcp","cores":1,"conns":2,"tx_per_s":"#
        ),
        "{stdout}"
    );
    if monoio().is_some() {
        assert!(out.status.success(), "{stderr}");
        assert_eq!(lines.len(), 2, "{stdout}");
        assert_eq!(lines[1].system, "monoio");
    } else {
        assert!(stderr.contains("monoio: skipped: "), "{stderr}");
    }

    // A scenario a peer cannot run: listed with its reason, the others run.
    let out = Command::new(&exe)
        .args(["udp", "--seconds", "0.3", "--conns", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("| tokio | 1 | 2 | "), "{stdout}");
    assert!(stdout.contains("- smoltcp: skipped: "), "{stdout}");
    assert!(!stdout.contains("- monoio: skipped: "), "{stdout}");
    if monoio().is_some() {
        assert!(stdout.contains("| monoio | 1 | 2 | "), "{stdout}");
    }
}
