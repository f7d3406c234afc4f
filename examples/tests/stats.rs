//! `MTCP_STATS`: the echo example, run as a process, prints one line of each
//! core's counters to stderr every interval; a bad value stops it at start
//! with one line naming the variable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn echo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo"));
    cmd.arg("0.0.0.0:8080")
        .env("MTCP_DEVICE", "memory")
        .env_remove("MTCP_PCAP")
        .env_remove("MTCP_FAULTS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn each_core_prints_a_line_every_interval() {
    let mut child = echo()
        .env("MTCP_STATS", "200ms")
        .env("MTCP_CORES", "2")
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut seen = [0u32; 2];
    let mut first: Option<String> = None;
    while seen.iter().any(|&n| n < 2) && start.elapsed() < Duration::from_secs(20) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        for (core, n) in seen.iter_mut().enumerate() {
            if line.starts_with(&format!("mtcp stats core {core}: rx ")) {
                *n += 1;
                first.get_or_insert(line.clone());
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    drop(rx);
    let _ = reader.join();
    assert!(
        seen.iter().all(|&n| n >= 2),
        "lines per core {seen:?} after {elapsed:?}"
    );
    let line = first.unwrap();
    for field in [
        " tx ",
        " drops ",
        " sockets ",
        " time_wait ",
        " chunks ",
        " frames ",
    ] {
        assert!(line.contains(field), "{field:?} missing in {line:?}");
    }
    // The echo server's listener is a socket.
    assert!(line.contains(" sockets 1 "), "{line}");
}

#[test]
fn a_bad_interval_fails_at_start_with_one_line() {
    let out = echo()
        .env("MTCP_STATS", "x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MTCP_STATS=\"x\": expected a duration like 5s or 500ms"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
