//! The tokio system's `idle` scenario: memory per established idle connection.
//!
//! The servers and the clients run in child processes (this same binary in
//! hidden modes), so that the servers' resident memory can be read from
//! `/proc/PID/statm` apart from anything else:
//!
//! - `--serve-tokio-idle CORE,SIZE` ([`serve_idle`]): listens on an ephemeral
//!   loopback port, prints `port N`, holds every accepted connection in an
//!   echo task with a `SIZE`-byte buffer (what a tokio echo server keeps per
//!   idle connection), and answers each `count` line on stdin with
//!   `accepted N`.
//! - `--hold-tokio-idle CORE,PORT,COUNT,INDEX` ([`hold_idle`]): opens `COUNT`
//!   connections to `PORT`, prints `opened N` (and the first error), and
//!   holds them until its stdin closes.
//!
//! One process can hold only as many sockets as its open-file limit allows.
//! The parent raises `RLIMIT_NOFILE` (children inherit it); when the hard
//! limit stays below the connection count, the connections are split over
//! several server/client process pairs, each server on its own port, and
//! the server figures are summed. `bytes_per_conn` is the servers' summed
//! RSS growth divided by the connections they accepted. Kernel socket
//! memory is not in any RSS: `kernel_bytes_per_conn` is the growth of the
//! kernel's slab (`/proc/meminfo`) over the same span divided by twice the
//! connections (both ends are kernel sockets); it is system-wide, so other
//! activity on the machine adds noise to it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

use crate::loops;
use crate::measurement::{Measurement, Metrics};
use crate::scenario::ScenarioConfig;
use crate::sys;
use crate::tokio_peer::{note_once, runtime, BACKLOG};

/// Connections per loopback source address: well inside the half of the
/// ephemeral port range that Linux uses for connect.
const CONNS_PER_SOURCE: usize = 10_000;

/// Source addresses set aside per client process (127.0.X.Y blocks).
const SOURCES_PER_PROCESS: usize = 256;

/// Connects in flight at once while opening idle connections.
const CONNECTS_IN_FLIGHT: usize = 256;

/// Descriptors a process keeps free for everything else.
const FD_MARGIN: u64 = 256;

/// A child process of this binary in a hidden mode, spoken to by lines.
struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(exe: &Path, mode: &str, arg: String) -> Result<Helper, String> {
        let mut child = Command::new(exe)
            .arg(mode)
            .arg(&arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} {mode} {arg}: {e}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("helper process without pipes".into());
        };
        Ok(Helper {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, without its newline.
    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim_end().to_string()),
            Ok(_) => Err("helper process exited".into()),
            Err(e) => Err(format!("helper pipe: {e}")),
        }
    }

    /// The value after `prefix` on the next line.
    fn expect<T: std::str::FromStr>(&mut self, prefix: &str) -> Result<(T, String), String> {
        let line = self.line()?;
        let rest = line
            .strip_prefix(prefix)
            .ok_or_else(|| format!("helper said `{line}`"))?;
        let (value, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let value = value.parse().map_err(|_| format!("helper said `{line}`"))?;
        Ok((value, tail.to_string()))
    }

    /// Connections the server has accepted so far.
    fn accepted(&mut self) -> Result<usize, String> {
        writeln!(self.stdin, "count")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("helper pipe: {e}"))?;
        Ok(self.expect::<usize>("accepted ")?.0)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills servers before clients, so that the servers make the active
/// close and TIME-WAIT does not tie up the clients' ephemeral ports.
fn kill_all(servers: Vec<Helper>, clients: Vec<Helper>) {
    for s in servers {
        s.kill();
    }
    thread::sleep(Duration::from_millis(100));
    for c in clients {
        c.kill();
    }
}

/// Runs `idle` for the tokio system with `exe` as the helper processes.
pub(crate) fn run_idle(config: &ScenarioConfig, exe: &Path) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(1);
    note_once(note);
    let core_id = |c: Option<core_affinity::CoreId>| c.map_or(usize::MAX, |c| c.id);
    let (server_core, client_core) = (core_id(server_cores[0]), core_id(client_cores[0]));
    let wanted = config.conns;
    let limit = sys::raise_nofile(wanted as u64 + FD_MARGIN);
    let per_process = limit.saturating_sub(FD_MARGIN).max(1) as usize;
    let processes = wanted.div_ceil(per_process);
    if processes > 1 {
        eprintln!(
            "tokio: idle: open-file limit {limit}: {processes} server/client process pairs \
             of up to {per_process} connections"
        );
    }

    let mut servers = Vec::with_capacity(processes);
    let mut clients: Vec<Helper> = Vec::with_capacity(processes);
    let result = (|| -> Result<Measurement, String> {
        let mut ports = Vec::with_capacity(processes);
        for _ in 0..processes {
            let mut s = Helper::spawn(
                exe,
                "--serve-tokio-idle",
                format!("{server_core},{}", config.size),
            )?;
            ports.push(s.expect::<u16>("port ")?.0);
            servers.push(s);
        }
        // Let the servers settle, then take the baselines.
        thread::sleep(Duration::from_millis(200));
        let rss_before = total_rss(&servers)?;
        let slab_before = sys::slab_bytes();

        for (i, port) in ports.iter().enumerate() {
            let count = per_process.min(wanted - i * per_process);
            clients.push(Helper::spawn(
                exe,
                "--hold-tokio-idle",
                format!("{client_core},{port},{count},{i}"),
            )?);
        }
        let mut opened = Vec::with_capacity(processes);
        for c in &mut clients {
            let (n, error) = c.expect::<usize>("opened ")?;
            if !error.is_empty() {
                eprintln!("tokio: idle: a client opened {n} connections: {error}");
            }
            opened.push(n);
        }
        let established: usize = opened.iter().sum();
        if established == 0 {
            return Err("no idle connection could be opened".into());
        }
        // Wait until the servers hold them all, or stop making progress.
        let mut accepted = total_accepted(&mut servers)?;
        let mut progress = Instant::now();
        while accepted < established && progress.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
            let now = total_accepted(&mut servers)?;
            if now > accepted {
                progress = Instant::now();
            }
            accepted = now;
        }
        thread::sleep(Duration::from_millis(300));
        let accepted = total_accepted(&mut servers)?;
        let rss_after = total_rss(&servers)?;
        let slab_after = sys::slab_bytes();
        if accepted == 0 {
            return Err("the idle servers accepted nothing".into());
        }
        if accepted < wanted {
            eprintln!("tokio: idle: {accepted} of {wanted} connections established");
        }
        let kernel = match (slab_before, slab_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / (2 * accepted) as f64),
            _ => None,
        };
        Ok(Measurement {
            system: "tokio".into(),
            cores: 1,
            conns: accepted,
            size: config.size,
            seconds: 0.0,
            rounds: 1,
            metrics: Metrics::Idle {
                requested: wanted,
                bytes_per_conn: rss_after.saturating_sub(rss_before) as f64 / accepted as f64,
                kernel_bytes_per_conn: kernel,
            },
        })
    })();
    kill_all(servers, clients);
    result
}

fn total_rss(servers: &[Helper]) -> Result<u64, String> {
    servers.iter().map(|s| sys::rss_bytes(s.pid())).sum()
}

fn total_accepted(servers: &mut [Helper]) -> Result<usize, String> {
    servers.iter_mut().map(Helper::accepted).sum()
}

/// The loopback source address of connection `conn` of client process
/// `process`: 127.0.0.0 + 1 + process * 256 + conn / 10 000.
fn source_address(process: usize, conn: usize) -> Ipv4Addr {
    let n = process * SOURCES_PER_PROCESS + conn / CONNS_PER_SOURCE + 1;
    let base = u32::from(Ipv4Addr::new(127, 0, 0, 0));
    Ipv4Addr::from(base + (n as u32 & 0x00ff_ffff))
}

/// Opens up to `wanted` connections to `addr` from this process's source
/// addresses; stops at the first error and returns it.
async fn open(addr: SocketAddr, wanted: usize, process: usize) -> (Vec<TcpStream>, Option<String>) {
    let mut streams = Vec::with_capacity(wanted);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut error = None;
    while streams.len() < wanted {
        while error.is_none() && next < wanted && in_flight.len() < CONNECTS_IN_FLIGHT {
            let source = source_address(process, next);
            in_flight.spawn(async move {
                let socket = TcpSocket::new_v4()?;
                // Leave the port to connect(), which only needs the 4-tuple
                // to be unique; bind() would scan for a port unused by any
                // socket, which gets slow as ports fill up.
                sys::bind_address_no_port(&socket)?;
                socket.bind(SocketAddr::from((source, 0)))?;
                socket.connect(addr).await
            });
            next += 1;
        }
        match in_flight.join_next().await {
            Some(Ok(Ok(stream))) => streams.push(stream),
            Some(Ok(Err(e))) => {
                error.get_or_insert_with(|| format!("connect #{}: {e}", streams.len()));
            }
            Some(Err(e)) => {
                error.get_or_insert_with(|| format!("connect task: {e}"));
            }
            None => break,
        }
    }
    (streams, error)
}

fn pin_to(core: usize) {
    let id = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == core);
    sys::pin(id);
}

fn say(line: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// The `--serve-tokio-idle CORE,SIZE` child: see the module documentation.
/// End of stdin ends the process.
///
/// # Errors
///
/// Why the server could not start.
pub fn serve_idle(core: usize, size: usize) -> Result<(), String> {
    pin_to(core);
    let rt = runtime()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    rt.block_on(async move {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| format!("bind: {e}"))?;
        let listener = socket.listen(BACKLOG).map_err(|e| format!("listen: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        say(&format!("port {port}"))?;
        thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "count" {
                    let n = counter.load(Ordering::Acquire);
                    if say(&format!("accepted {n}")).is_err() {
                        break;
                    }
                }
            }
            std::process::exit(0);
        });
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    accepted.fetch_add(1, Ordering::AcqRel);
                    tokio::spawn(async move {
                        let _ = loops::echo_server(stream, size).await;
                    });
                }
                // Out of descriptors: the connection waits in the backlog.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}

/// The `--hold-tokio-idle CORE,PORT,COUNT,INDEX` child: see the module
/// documentation.
///
/// # Errors
///
/// Why the client could not start.
pub fn hold_idle(core: usize, port: u16, count: usize, process: usize) -> Result<(), String> {
    pin_to(core);
    let rt = runtime()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (streams, error) = rt.block_on(open(addr, count, process));
    match error {
        Some(e) => say(&format!("opened {} {e}", streams.len()))?,
        None => say(&format!("opened {}", streams.len()))?,
    }
    // Hold the connections until the parent closes our stdin (or kills us).
    let mut sink = String::new();
    while io::stdin().lock().read_line(&mut sink).is_ok_and(|n| n > 0) {
        sink.clear();
    }
    drop(streams);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_change_every_block_and_process() {
        assert_eq!(source_address(0, 0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            source_address(0, CONNS_PER_SOURCE - 1),
            Ipv4Addr::new(127, 0, 0, 1)
        );
        assert_eq!(
            source_address(0, CONNS_PER_SOURCE),
            Ipv4Addr::new(127, 0, 0, 2)
        );
        assert_eq!(source_address(0, 1_000_000), Ipv4Addr::new(127, 0, 0, 101));
        assert_eq!(source_address(1, 0), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(source_address(60, 19_999), Ipv4Addr::new(127, 0, 60, 2));
    }
}
