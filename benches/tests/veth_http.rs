//! `veth --http` for real, briefly (1 s per run, 2 connections, 1 round):
//! every server (mtcp on AF_PACKET and AF_XDP, hyper on tokio) serves
//! requests with and without keep-alive, with no socket error and no
//! non-2xx answer, and every JSON line has the fields of the contract.
//!
//! Needs root, network namespaces and `wrk`; without them it prints `SKIP`
//! (and fails under `MTCP_REQUIRE_NETNS=1`, testkit's policy). Run it under
//! `flock /tmp/mtcp-netns.lock`. It builds the `http` example into this
//! test's target folder and profile (a no-op when it is fresh).

use std::path::{Path, PathBuf};
use std::process::Command;

use benches::veth_http::{HttpRow, SCENARIO};
use mtcp_testkit::netns;

const TEST: &str = "veth_http_serves_every_system";

/// The workspace root (veth runs `scripts/netns.sh` from there).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the `http` example next to this test's `veth` binary.
fn http_example() -> PathBuf {
    let veth = Path::new(env!("CARGO_BIN_EXE_veth"));
    let profile_dir = veth.parent().expect("veth's folder");
    let target = profile_dir.parent().expect("target folder");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile folder");
    let mut c = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    c.args(["build", "-p", "examples", "--bin", "http"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(root());
    if profile != "debug" {
        c.args(["--profile", profile]);
    }
    let st = c.status().expect("run cargo");
    assert!(st.success(), "building the http example failed: {st}");
    let http = profile_dir.join("http");
    assert!(http.exists(), "{} missing after the build", http.display());
    http
}

#[test]
fn veth_http_serves_every_system() {
    if let Err(why) = netns::environment() {
        return netns::skip(TEST, &why);
    }
    if !netns::have("wrk") {
        return netns::skip(TEST, "`wrk` is missing (apt-get install wrk)");
    }
    let _g = netns::serial();
    let http = http_example();
    let out = Command::new(env!("CARGO_BIN_EXE_veth"))
        .arg("--http")
        .arg(&http)
        .args(["--seconds", "1", "--conns", "2", "--rounds", "1", "--json"])
        .current_dir(root())
        .output()
        .expect("run veth");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "veth --http failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The two servers after the first answered as it did.
    assert_eq!(
        stderr
            .matches("answers GET / and GET /missing as mtcp af_packet does")
            .count(),
        2,
        "{stderr}"
    );
    let mut seen = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        for k in [
            "scenario",
            "system",
            "mode",
            "conns",
            "round",
            "requests",
            "seconds",
            "req_per_s",
            "p50_us",
            "p99_us",
            "socket_errors",
            "non_2xx",
            "server_cpu_us_per_req",
        ] {
            assert!(v.get(k).is_some(), "no {k} in {line}");
        }
        assert_eq!(v["scenario"], SCENARIO);
        let r = HttpRow::from_json_line(line).expect("a veth-http row");
        assert!(
            r.wrk.requests > 0,
            "{} {}: no requests: {line}",
            r.system,
            r.mode
        );
        assert!(r.wrk.req_per_s > 0.0, "{line}");
        assert!(r.wrk.p50_us > 0.0 && r.wrk.p99_us >= r.wrk.p50_us, "{line}");
        assert_eq!(
            r.errors(),
            0,
            "{} {}: errors: {line}\n{stderr}",
            r.system,
            r.mode
        );
        assert_eq!(r.conns, 2);
        seen.push((r.system, r.mode));
    }
    seen.sort();
    let mut want: Vec<(String, String)> = Vec::new();
    for s in ["mtcp af_packet", "mtcp xdp", "tokio (kernel)"] {
        for m in ["close", "keep-alive"] {
            want.push((s.into(), m.into()));
        }
    }
    want.sort();
    assert_eq!(seen, want, "one row per server and mode:\n{stdout}");
}
