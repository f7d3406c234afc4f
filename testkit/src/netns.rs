//! Network namespaces for the tests that use the Linux kernel as the peer.
//!
//! The topologies come from `scripts/netns.sh` (`up`: a veth pair between
//! the stack's namespace `PREFIX-stk` and the peer's `PREFIX-peer`; `tap`:
//! a TAP in `PREFIX-tap`; `down`: removes every `PREFIX-*` namespace and
//! link). `PREFIX` is `MTCP_NS_PREFIX` (default `mtcp`).
//!
//! Skip policy: without root or `ip netns` a test prints one `SKIP` line
//! saying what is missing and passes ([`skip`]); with
//! `MTCP_REQUIRE_NETNS=1` (CI) the same condition fails the test.
//!
//! The tests of one binary share the namespaces: each holds [`serial`]'s
//! guard, which runs `scripts/netns.sh down` when dropped (also when the
//! test panics), so a run leaves nothing behind. Test binaries of one
//! `cargo test` run one after another.

use std::ffi::CString;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

/// The variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "MTCP_REQUIRE_NETNS";

/// `scripts/netns.sh`.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns.sh");

/// Whether the environment demands that namespace tests run.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).as_deref() == Ok("1")
}

/// Says why `test` is skipped, or fails it when namespaces are required.
///
/// # Panics
/// With `MTCP_REQUIRE_NETNS=1`.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if required() {
        panic!("{test}: {REQUIRE_VAR}=1 but {why}");
    }
    eprintln!("SKIP {test}: {why} (run as root with iproute2; {REQUIRE_VAR}=1 makes this fail)");
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command; its stdout, or an error naming it with its output.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether `cmd` is on the `PATH`.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Root, `ip` and working `ip netns`; `Err` says what is missing.
pub fn environment() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    if !have("ip") {
        return Err("`ip` (iproute2) is missing".into());
    }
    sh(&["ip", "netns", "list"]).map_err(|e| format!("`ip netns` does not work: {e}"))?;
    Ok(())
}

/// The namespace and link prefix (`MTCP_NS_PREFIX`, default `mtcp`).
pub fn prefix() -> String {
    std::env::var("MTCP_NS_PREFIX").unwrap_or_else(|_| "mtcp".into())
}

/// `PREFIX-suffix`: a name of the topology.
pub fn name(suffix: &str) -> String {
    format!("{}-{suffix}", prefix())
}

/// Runs `scripts/netns.sh CMD` with `envs` after checking
/// [`environment`]; `Err` says why the topology is not there.
pub fn up(cmd: &str, envs: &[(&str, String)]) -> Result<(), String> {
    environment()?;
    let mut c = Command::new("bash");
    c.arg(SCRIPT).arg(cmd).env("MTCP_NS_PREFIX", prefix());
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().map_err(|e| format!("{SCRIPT}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/netns.sh {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// `scripts/netns.sh down` when root (nothing was made otherwise).
pub fn down() {
    if !is_root() {
        return;
    }
    Command::new("bash")
        .arg(SCRIPT)
        .arg("down")
        .env("MTCP_NS_PREFIX", prefix())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok();
}

/// Forgets every neighbour of `dev` in `ns` (a new run may use another
/// MAC for the stack: a stale entry would hide ARP).
pub fn flush_neigh(ns: &str, dev: &str) {
    sh(&["ip", "-n", ns, "neigh", "flush", "dev", dev, "nud", "all"]).ok();
}

static SERIAL: Mutex<()> = Mutex::new(());

/// A test binary's namespace lock, held for one test; dropped (also when
/// the test panics), it removes the topology ([`down`]).
#[derive(Debug)]
pub struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Serial {
    fn drop(&mut self) {
        down();
    }
}

/// Takes the lock (a test that panicked while holding it does not poison
/// the others).
pub fn serial() -> Serial {
    Serial(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Moves the calling thread into network namespace `ns`
/// (`/run/netns/NS`, as `ip netns add` makes it).
pub fn enter(ns: &str) -> std::io::Result<()> {
    if ns.is_empty() || ns.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad namespace name {ns:?}"),
        ));
    }
    let path = CString::new(format!("/run/netns/{ns}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is a valid NUL-terminated string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open namespace file; setns changes only the
    // calling thread's namespace.
    let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if r != 0 {
        return Err(err);
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns`.
///
/// # Panics
/// On that thread, when the namespace cannot be entered.
pub fn spawn_in<T, F>(ns: &str, f: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = ns.to_string();
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            enter(&ns).unwrap_or_else(|e| panic!("enter network namespace {ns}: {e}"));
            f()
        })
        .expect("spawn thread")
}

/// Waits for a thread, passing its panic on.
pub fn join<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs `f` inside `ns` and waits for it.
pub fn in_ns<T, F>(ns: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    join(spawn_in(ns, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        assert!(name("stk").ends_with("-stk"));
        assert!(name("stk").starts_with(&prefix()));
    }

    #[test]
    fn bad_namespace_names_are_refused() {
        assert_eq!(
            enter("a/b").unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            enter("").unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn sh_reports_the_failing_command() {
        let e = sh(&["false"]).unwrap_err();
        assert!(e.starts_with("false failed"), "{e}");
        assert_eq!(sh(&["echo", "hi"]).unwrap(), "hi\n");
    }
}
