//! Linux helpers: file-descriptor limits, core pinning, and the kernel's
//! memory and socket counters read from `/proc`.
#![allow(unsafe_code)]

use std::fs;
use std::io;
use std::os::fd::AsRawFd;

use core_affinity::CoreId;

/// Raises this process's open-file limit (soft and, when allowed, hard) to
/// at least `wanted` descriptors. Returns the soft limit in force afterwards,
/// which may be lower than `wanted` when the process may not raise its hard
/// limit or the kernel's `fs.nr_open` is lower.
pub fn raise_nofile(wanted: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur >= wanted {
        return lim.rlim_cur;
    }
    let nr_open = read_u64("/proc/sys/fs/nr_open").unwrap_or(lim.rlim_max);
    let target = wanted.min(nr_open.max(lim.rlim_max));
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: target.max(lim.rlim_max),
    };
    // SAFETY: `raised` is a valid rlimit; the call only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return target;
    }
    // Not allowed to raise the hard limit: go as far as it permits.
    let soft = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        lim.rlim_max
    } else {
        lim.rlim_cur
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on a socket, so that a later `bind` to
/// port 0 leaves the choice of port to `connect`.
///
/// # Errors
///
/// The `setsockopt` error.
pub fn bind_address_no_port(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is a live socket owned by `socket`; the option
    // value points at a c_int that outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// The resident set size of process `pid` in bytes (`/proc/PID/statm`, second field).
///
/// # Errors
///
/// A message when the file cannot be read or parsed.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/statm");
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("{path}: unexpected contents"))?;
    Ok(pages * page_size())
}

/// The kernel's slab memory in bytes (`Slab:` of `/proc/meminfo`), where
/// socket, inode, file and epoll structures live.
pub fn slab_bytes() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_field(&text, "Slab:").map(|kb| kb * 1024)
}

/// Sockets in TIME-WAIT in this network namespace (`tw` of the `TCP:` line
/// of `/proc/net/sockstat`).
pub fn time_wait_sockets() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/sockstat").ok()?;
    sockstat_field(&text, "TCP:", "tw")
}

/// Sockets in TIME-WAIT whose local port is `port` (IPv4, from
/// `/proc/net/tcp`): the TIME-WAIT entries a server on `port` left behind.
pub fn time_wait_on_port(port: u16) -> Option<u64> {
    let text = fs::read_to_string("/proc/net/tcp").ok()?;
    Some(count_state_on_port(&text, port, "06"))
}

/// `net.ipv4.tcp_max_tw_buckets`: past this many, the kernel drops
/// TIME-WAIT sockets instead of keeping them.
pub fn max_tw_buckets() -> Option<u64> {
    read_u64("/proc/sys/net/ipv4/tcp_max_tw_buckets")
}

/// The number of ports in `net.ipv4.ip_local_port_range` (the ephemeral
/// ports a client may connect from).
pub fn ephemeral_ports() -> Option<u64> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    hi.checked_sub(lo).map(|d| d + 1)
}

/// Pins the calling thread to `core`; false if that failed.
pub fn pin(core: Option<CoreId>) -> bool {
    core.is_some_and(core_affinity::set_for_current)
}

/// Where the server and client threads go: `per_side` cores each, server
/// first. With fewer cores than `2 * per_side`, cores are shared and the
/// returned note says so.
pub fn placement(per_side: usize) -> (Vec<Option<CoreId>>, Vec<Option<CoreId>>, Option<String>) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.is_empty() {
        let none = vec![None; per_side];
        return (
            none.clone(),
            none,
            Some("cannot pin threads: no core list".into()),
        );
    }
    let at = |i: usize| Some(ids[i % ids.len()]);
    let server = (0..per_side).map(at).collect();
    let client = (per_side..2 * per_side).map(at).collect();
    let note = (ids.len() < 2 * per_side).then(|| {
        format!(
            "only {} cores for {} threads: server and client share cores",
            ids.len(),
            2 * per_side
        )
    });
    (server, client, note)
}

/// Counts the `/proc/net/tcp` rows in state `state` (hex, `06` = TIME-WAIT)
/// whose local port is `port`.
fn count_state_on_port(text: &str, port: u16, state: &str) -> u64 {
    let port_hex = format!("{port:04X}");
    text.lines()
        .skip(1)
        .filter(|line| {
            let mut f = line.split_whitespace();
            let local = f.nth(1);
            let st = f.nth(1);
            st == Some(state) && local.and_then(|l| l.rsplit(':').next()) == Some(port_hex.as_str())
        })
        .count() as u64
}

fn read_u64(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn sockstat_field(text: &str, line: &str, key: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(line))?;
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let sockstat =
            "sockets: used 120\nTCP: inuse 5 orphan 0 tw 17 alloc 8 mem 1\nUDP: inuse 0\n";
        assert_eq!(sockstat_field(sockstat, "TCP:", "tw"), Some(17));
        assert_eq!(sockstat_field(sockstat, "TCP:", "inuse"), Some(5));
        assert_eq!(sockstat_field(sockstat, "TCP:", "nope"), None);
        assert_eq!(sockstat_field(sockstat, "RAW:", "tw"), None);
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 0100007F:9447 0100007F:93DA 06 00000000:00000000 03:00001234 00000000\n\
   1: 0100007F:9447 0100007F:93DB 01 00000000:00000000 00:00000000 00000000\n\
   2: 0100007F:93DC 0100007F:9447 06 00000000:00000000 03:00001234 00000000\n";
        assert_eq!(count_state_on_port(tcp, 0x9447, "06"), 1);
        assert_eq!(count_state_on_port(tcp, 0x9447, "01"), 1);
        assert_eq!(count_state_on_port(tcp, 0x93DC, "06"), 1);
        assert_eq!(count_state_on_port(tcp, 1, "06"), 0);
        let meminfo = "MemTotal:       24683520 kB\nSlab:             312456 kB\n";
        assert_eq!(meminfo_field(meminfo, "Slab:"), Some(312_456));
        assert_eq!(meminfo_field(meminfo, "Foo:"), None);
    }

    #[test]
    fn reads_own_process() {
        let rss = rss_bytes(std::process::id()).unwrap();
        assert!(rss > 0);
        assert!(rss_bytes(u32::MAX).is_err());
        assert!(page_size() >= 4096);
        assert!(slab_bytes().is_some_and(|b| b > 0));
        assert!(time_wait_sockets().is_some());
        assert!(ephemeral_ports().is_some_and(|p| p > 0));
    }

    #[test]
    fn nofile_limit_is_at_least_what_was_there() {
        let before = raise_nofile(0);
        assert!(raise_nofile(before) >= before);
    }

    #[test]
    fn placement_gives_each_side_its_cores() {
        let (server, client, _) = placement(1);
        assert_eq!((server.len(), client.len()), (1, 1));
        let n = core_affinity::get_core_ids().map_or(0, |v| v.len());
        if n >= 2 {
            assert_ne!(server[0], client[0]);
        }
    }
}
