//! Shared by the logging tests: re-run this test binary as the program
//! under test and check what it logged.

use std::process::Command;

/// The variable that makes the binary act as the program under test.
pub const CHILD: &str = "MTCP_LOGGING_CHILD";

/// Runs the current executable as the child with `RUST_LOG=debug` and
/// checks it succeeded and that its output (stdout and stderr together)
/// contains every one of `expected`.
pub fn run_child_and_check(expected: &[&str]) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .env(CHILD, "1")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .env("MTCP_CORES", "1")
        .env_remove("MTCP_DEVICE")
        .env_remove("MTCP_PCAP")
        .env_remove("MTCP_FAULTS")
        .output()
        .expect("spawn the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child failed ({}):\n{text}",
        out.status
    );
    for e in expected {
        assert!(
            text.contains(e),
            "missing {e:?} in the child's output:\n{text}"
        );
    }
    println!(
        "ok: the child's log lines appear ({} checked)",
        expected.len()
    );
}
