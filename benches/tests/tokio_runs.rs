//! Short real runs of the tokio system on loopback, and of the `compare`
//! binary end to end.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use benches::mtcp_peer::MtcpSystem;
use benches::tokio_peer::TokioSystem;
use benches::{Measurement, Metrics, PollMode, Scenario, ScenarioConfig, System};

fn config(scenario: Scenario, conns: usize) -> ScenarioConfig {
    let mut c = ScenarioConfig::new(scenario);
    c.duration = Duration::from_secs(1);
    c.warmup = Duration::from_millis(200);
    c.conns = conns;
    c
}

fn compare_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_compare"))
}

#[test]
fn echo_two_connections_for_a_second() {
    let m = TokioSystem::new().run(&config(Scenario::Echo, 2)).unwrap();
    assert_eq!((m.system.as_str(), m.conns, m.cores), ("tokio", 2, 1));
    let Metrics::Echo { tx_per_s, latency } = m.metrics else {
        panic!("{m:?}")
    };
    assert!(tx_per_s > 0.0, "{m:?}");
    assert!(latency.p50_us > 0.0, "{m:?}");
    assert!(latency.p50_us <= latency.p99_us, "{m:?}");
    assert!(latency.p99_us <= latency.p999_us, "{m:?}");
}

/// Checks a `udp` measurement of `conns` sockets.
fn check_udp(m: &Measurement, system: &str, conns: usize) {
    assert_eq!((m.system.as_str(), m.conns, m.cores), (system, conns, 1));
    let Metrics::Udp {
        tx_per_s,
        latency,
        lost,
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert!(tx_per_s > 0.0, "{m:?}");
    assert!(latency.p50_us > 0.0, "{m:?}");
    assert!(latency.p50_us <= latency.p99_us, "{m:?}");
    // Loopback and the in-memory NIC lose next to nothing at this rate:
    // a handful of datagrams at most, against thousands answered.
    assert!((lost as f64) < tx_per_s * 0.01, "{m:?}");
}

#[test]
fn udp_two_sockets_for_a_second() {
    let m = TokioSystem::new().run(&config(Scenario::Udp, 2)).unwrap();
    check_udp(&m, "tokio", 2);
}

#[test]
fn udp_on_mtcp_for_a_second() {
    // Adaptive polling: the test shares the machine with other tests.
    let mut c = config(Scenario::Udp, 3);
    c.poll = PollMode::Adaptive;
    let m = MtcpSystem::new().run(&c).unwrap();
    check_udp(&m, "mtcp", 3);
}

#[test]
fn compare_udp_prints_contract_json_lines() {
    let out = Command::new(compare_exe())
        .args([
            "udp",
            "--seconds",
            "0.5",
            "--conns",
            "4",
            "--json",
            "--systems",
            "tokio",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let line = lines[0];
    assert!(
        line.starts_with(r#"{"scenario":"udp","system":"tokio","cores":1,"conns":4,"tx_per_s":"#),
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    for key in ["p50_us", "p99_us"] {
        assert!(v[key].is_number(), "{key} in {line}");
    }
    assert!(v["lost"].is_u64(), "{line}");
    let m = Measurement::from_json_line(line).unwrap();
    assert_eq!(m.scenario(), Scenario::Udp);
}

#[test]
fn connect_cycles_leave_time_wait_behind() {
    let m = TokioSystem::new()
        .run(&config(Scenario::Connect, 2))
        .unwrap();
    let Metrics::Connect {
        conns_per_s,
        time_wait,
        latency,
        errors,
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert!(conns_per_s > 0.0, "{m:?}");
    // TIME-WAIT is kept unless the kernel's table of TIME-WAIT sockets is
    // full (net.ipv4.tcp_max_tw_buckets), which other tests can cause.
    let table_full = match (
        benches::sys::time_wait_sockets(),
        benches::sys::max_tw_buckets(),
    ) {
        (Some(tw), Some(max)) => tw as f64 >= 0.9 * max as f64,
        _ => false,
    };
    assert!(time_wait || table_full, "{m:?}");
    assert_eq!(errors, 0);
    assert!(latency.p50_us <= latency.p99_us);
}

#[test]
fn bulk_moves_bytes() {
    let m = TokioSystem::new().run(&config(Scenario::Bulk, 1)).unwrap();
    let Metrics::Bulk { gbit_per_s } = m.metrics else {
        panic!("{m:?}")
    };
    assert!(gbit_per_s > 0.0, "{m:?}");
}

#[test]
fn idle_memory_per_connection() {
    let m = TokioSystem::with_helper_exe(compare_exe())
        .run(&config(Scenario::Idle, 500))
        .unwrap();
    let Metrics::Idle {
        requested,
        bytes_per_conn,
        ..
    } = m.metrics
    else {
        panic!("{m:?}")
    };
    assert_eq!(requested, 500);
    assert_eq!(m.conns, 500, "{m:?}");
    // A tokio connection costs user-space memory (a task, a buffer, the
    // registration), but not megabytes.
    assert!(bytes_per_conn > 0.0 && bytes_per_conn < 1e6, "{m:?}");
}

#[test]
fn compare_prints_contract_json_lines() {
    let out = Command::new(compare_exe())
        .args([
            "echo",
            "--seconds",
            "0.5",
            "--conns",
            "1,3",
            "--json",
            "--systems",
            "tokio",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, conns) in lines.iter().zip([1, 3]) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "scenario", "system", "cores", "conns", "tx_per_s", "p50_us", "p99_us",
        ] {
            assert!(keys.contains(&key), "{key} missing in {line}");
        }
        assert_eq!(v["scenario"], "echo");
        assert_eq!(v["system"], "tokio");
        assert!(v["cores"].is_u64() && v["conns"] == conns, "{line}");
        assert!(v["tx_per_s"].is_number() && v["p50_us"].is_number() && v["p99_us"].is_number());
        // The contract's fields come first, in its order.
        assert!(line.starts_with(&format!(
            r#"{{"scenario":"echo","system":"tokio","cores":1,"conns":{conns},"tx_per_s":"#
        )));
        let m = Measurement::from_json_line(line).unwrap();
        assert_eq!(m.conns, conns);
    }
}

#[test]
fn compare_lists_skipped_systems_and_rejects_bad_arguments() {
    let out = Command::new(compare_exe())
        .args(["bulk", "--seconds", "0.3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("| system | cores | write bytes | Gbit/s |\n"),
        "{stdout}"
    );
    assert!(stdout.contains("| tokio | 1 | 65536 | "), "{stdout}");
    let mtcp = MtcpSystem::new().available();
    if let Err(why) = &mtcp {
        assert!(
            stdout.contains(&format!("- mtcp: skipped: {why}\n")),
            "{stdout}"
        );

        // Asked for by name but unavailable: a failure, with the reason.
        let out = Command::new(compare_exe())
            .args(["echo", "--systems", "mtcp", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("mtcp: skipped: "));
    } else {
        assert!(stdout.contains("| mtcp | 1 | 65536 | "), "{stdout}");
    }

    let out = Command::new(compare_exe())
        .args(["echo", "--seconds", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("compare: option `--seconds`: `x` is not")
    );
    let out = Command::new(compare_exe())
        .args(["echo", "--systems", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown system `nope`"));
}
