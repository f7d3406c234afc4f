//! Hostile traffic with the kernel as the peer (issue 11): thousands of
//! idle connections held while new clients are served, and a LAND frame
//! (SYN from the stack's own address and port to itself) that must not
//! make the stack storm, and 100 slow readers that fill the chunk pool
//! while a legitimate client keeps being served.

use super::*;

/// Idle connections held open: well under the default
/// `MTCP_MAX_CONNECTIONS` (65 536 per core), so none is passed. The kernel
/// client needs one ephemeral port each (28 232 by default) and one
/// descriptor each ([`ensure_nofile`]).
const IDLE_CONNS: usize = 10_000;
/// The mtcp process's resident memory may grow by at most this much while
/// it holds the idle connections (TCBs are preallocated; idle connections
/// hold no buffer chunks).
const IDLE_RSS_GROWTH_MAX: u64 = 64 * 1024 * 1024;

/// Makes at least `n` descriptors available to this process: the soft
/// limit is raised to `n`, and the hard one too if needed (the tests run
/// as root). Panics if that is refused: the test could not open its
/// connections.
fn ensure_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) },
        0,
        "getrlimit"
    );
    if lim.rlim_cur >= n {
        return;
    }
    lim.rlim_cur = n;
    lim.rlim_max = lim.rlim_max.max(n);
    // SAFETY: `lim` is a valid rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(
        rc,
        0,
        "setrlimit(RLIMIT_NOFILE, {n}): {}",
        std::io::Error::last_os_error()
    );
}

/// The resident set size of process `pid`, bytes (`VmRSS`).
fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Issue 11: `IDLE_CONNS` idle kernel connections are held while a new
/// client does 200 connect + echo + close rounds: 0 failures, every idle
/// connection still echoes afterwards, memory within the bound.
#[test]
fn af_packet_idle_connections_held_while_new_clients_are_served() {
    let test = "af_packet_idle_connections_held_while_new_clients_are_served";
    let _g = serial();
    let topo = match topology(Backend::AfPacket, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    ensure_nofile(IDLE_CONNS as u64 + 1024);
    let server = start_echo(test, &topo, &[]);
    let pid = server.child.id();
    // `ip netns exec` execs the binary: the child is the mtcp process.
    let rss_before = vm_rss(pid);
    let addr = topo.stack(ECHO_PORT);
    let what = test.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (held_tx, held_rx) = mpsc::channel();
    let idle = {
        let what = what.clone();
        let stop = stop.clone();
        spawn_in(topo.peer_ns, move || {
            let start = Instant::now();
            let mut conns = Vec::with_capacity(IDLE_CONNS);
            for i in 0..IDLE_CONNS {
                let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                    .unwrap_or_else(|e| panic!("{what}: idle conn {i}: {e}"));
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                conns.push(s);
            }
            eprintln!(
                "{what}: {IDLE_CONNS} idle connections open in {:.2?}",
                start.elapsed()
            );
            held_tx.send(()).ok();
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
            // Every one is still alive and served.
            let mut msg = [0u8; 8];
            let mut back = [0u8; 8];
            for (i, s) in conns.iter_mut().enumerate() {
                fill(i as u64, &mut msg);
                round_trip(s, &msg, &mut back, &format!("{what}: idle conn {i} after"));
            }
            conns.len()
        })
    };
    held_rx
        .recv_timeout(CHECK_DEADLINE)
        .unwrap_or_else(|_| panic!("{test}: idle connections not opened in time"));
    let rss_held = vm_rss(pid);
    // New clients while they are held: 200 connect + echo + close, none
    // may fail (`check_sequential` panics on the first failure).
    let t = Instant::now();
    check_sequential(topo.peer_ns, addr, 200, test);
    let rate = 200.0 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let alive = join(idle);
    assert_eq!(alive, IDLE_CONNS);
    let rss_after = vm_rss(pid);
    eprintln!(
        "{test}: VmRSS {} KiB at start, {} KiB holding {IDLE_CONNS} idle, {} KiB after \
         200 new connections; {rate:.0} new connections/s while held",
        rss_before / 1024,
        rss_held / 1024,
        rss_after / 1024
    );
    assert!(rss_before > 0, "{test}: no VmRSS for pid {pid}");
    assert!(
        rss_after.max(rss_held) <= rss_before + IDLE_RSS_GROWTH_MAX,
        "{test}: VmRSS grew from {rss_before} to {} bytes (bound {IDLE_RSS_GROWTH_MAX})",
        rss_after.max(rss_held)
    );
    server.finish();
}

/// The Internet checksum of `parts` (one's complement of the one's
/// complement sum).
fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [b] = chunks.remainder() {
            sum += u32::from(*b) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A LAND segment: IPv4 + TCP SYN from `ip:port` to `ip:port`.
fn land_frame(ip: Ipv4Addr, port: u16, seq: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&ip.octets());
    p[16..20].copy_from_slice(&ip.octets());
    let ip_sum = inet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let tcp = &mut p[20..];
    tcp[0..2].copy_from_slice(&port.to_be_bytes());
    tcp[2..4].copy_from_slice(&port.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&ip.octets());
    pseudo[4..8].copy_from_slice(&ip.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let sum = inet_checksum(&[&pseudo, &p[20..]]);
    p[36..38].copy_from_slice(&sum.to_be_bytes());
    p
}

/// Counts the TCP frames the stack sends towards the peer on `ifname`
/// (IPv4, arriving, not our own outgoing) for `window`.
fn count_stack_tcp_frames(ifname: &str, stack_ip: Ipv4Addr, window: Duration) -> usize {
    // SAFETY: plain socket call.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            // Cooked: the IPv4 packet without the Ethernet header.
            libc::SOCK_DGRAM,
            i32::from((libc::ETH_P_IP as u16).to_be()),
        )
    };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: valid C string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(ifindex != 0, "if_nametoindex({ifname})");
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: valid socket and option buffer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            core::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let start = Instant::now();
    let mut count = 0;
    let mut buf = [0u8; 2048];
    while start.elapsed() < window {
        // SAFETY: zeroed sockaddr_ll is a valid output buffer.
        let mut from: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
        let mut len = core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are valid for the sizes passed.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 20 || from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let ip = &buf[..n as usize];
        if ip[9] == 6 && ip[12..16] == stack_ip.octets() {
            count += 1;
        }
    }
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    count
}

/// Issue 11: a LAND frame (SYN from the stack's address and port to
/// itself), sent from the peer namespace with a raw socket, makes no
/// storm: the stack sends a bounded number of TCP frames over 2 s, and a
/// legitimate client keeps being served before and after.
#[test]
fn af_packet_land_frame_makes_no_storm() {
    let test = "af_packet_land_frame_makes_no_storm";
    let _g = serial();
    let topo = match topology(Backend::AfPacket, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let server = start_echo(test, &topo, &[]);
    let addr = topo.stack(ECHO_PORT);
    check_sequential(topo.peer_ns, addr, 20, &format!("{test}: before"));
    let (stack_ip, peer_if) = (topo.stack_ip, topo.peer_if);
    // Count what the stack sends for 2 s while 3 LAND frames go out, 500 ms
    // apart (no other traffic then, so every frame counted is an answer).
    let counter = spawn_in(topo.peer_ns, move || {
        count_stack_tcp_frames(peer_if, stack_ip, Duration::from_secs(2))
    });
    thread::sleep(Duration::from_millis(100));
    let sent = in_ns(topo.peer_ns, move || {
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let dst = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(stack_ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut sent = 0;
        for i in 0..3u32 {
            let frame = land_frame(stack_ip, ECHO_PORT, 0x1000_0000 + i);
            // SAFETY: `frame` and `dst` are valid for the sizes passed.
            let n = unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&dst as *const libc::sockaddr_in).cast(),
                    core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            assert_eq!(n, 40, "sendto: {}", std::io::Error::last_os_error());
            sent += 1;
            thread::sleep(Duration::from_millis(500));
        }
        // SAFETY: `fd` is ours.
        unsafe { libc::close(fd) };
        sent
    });
    let frames = join(counter);
    eprintln!("{test}: {sent} LAND frames sent; the stack sent {frames} TCP frames in 2 s");
    // A storm is thousands of frames a second; a stack that answered each
    // LAND frame once (SYN-ACK or RST) would send a handful.
    assert!(
        frames <= 20,
        "{test}: the stack sent {frames} TCP frames in 2 s after {sent} LAND frames"
    );
    // The counter sees the stack's frames when there are some: count
    // while a client works.
    let counter = spawn_in(topo.peer_ns, move || {
        count_stack_tcp_frames(peer_if, stack_ip, Duration::from_millis(1500))
    });
    thread::sleep(Duration::from_millis(200));
    check_sequential(topo.peer_ns, addr, 50, &format!("{test}: after"));
    let seen = join(counter);
    assert!(
        seen >= 50,
        "{test}: the frame counter saw only {seen} frames of 50 connections"
    );
    server.finish();
}

/// Slow readers: connections that push data to the echo server and never
/// read its answer.
const SLOW_READERS: usize = 100;
/// Their receive buffer (`SO_RCVBUF`, set before connecting so that the
/// window they offer stays small).
const SLOW_RCVBUF: libc::c_int = 4096;
/// How long the pool is given to fill before measuring, and how long the
/// legitimate client is measured while it is held.
const SLOW_FILL: Duration = Duration::from_secs(2);
const SLOW_SECS: f64 = 5.0;
/// The fraction of the legitimate client's connects/s that must hold.
const SLOW_MIN_FRACTION: f64 = 0.5;
/// The chunk pool of one core, `chunks IN_USE/CAPACITY` in the stats line.
fn chunks_in_use(line: &str) -> Option<(u64, u64)> {
    let rest = line.split_once(" chunks ")?.1;
    let (used, rest) = rest.split_once('/')?;
    let cap = rest.split_whitespace().next()?;
    Some((used.parse().ok()?, cap.parse().ok()?))
}

/// A kernel TCP connection to `addr` whose `SO_RCVBUF` is `rcvbuf`, set
/// before `connect` (the window scale and the first window follow it).
fn connect_small_rcvbuf(addr: SocketAddr, rcvbuf: libc::c_int) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        unreachable!("IPv4 only")
    };
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is ours; `TcpStream` closes it from here on.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: `rcvbuf` is a valid c_int for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&rcvbuf as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut sa: libc::sockaddr_in = unsafe { core::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    // SAFETY: `sa` is a valid sockaddr_in for the call.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

/// Issue 11, "100 slow readers": `SLOW_READERS` kernel connections with a
/// small receive buffer push data to the echo server as fast as it takes
/// it and never read the echo, so each holds its full send buffer (and
/// then its receive buffer) on the mtcp side: the chunk pool fills to its
/// reserve. Meanwhile a legitimate client's connect + echo + close rounds
/// must all succeed, at no less than `SLOW_MIN_FRACTION` of its
/// connects/s before, and memory stays within the bound (the pool is
/// preallocated, so holding it full costs nothing more).
#[test]
fn af_packet_slow_readers_do_not_starve_new_clients() {
    let test = "af_packet_slow_readers_do_not_starve_new_clients";
    let _g = serial();
    let topo = match topology(Backend::AfPacket, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let server = start_echo(test, &topo, &[("MTCP_STATS", "250ms".to_string())]);
    let pid = server.child.id();
    let rss_before = vm_rss(pid);
    let addr = topo.stack(ECHO_PORT);
    let (before, f0) = join(super::arp_flood::legit_client(topo.peer_ns, addr, 2.0));
    assert_eq!(f0, 0, "{test}: failures before the slow readers");
    let stop = Arc::new(AtomicBool::new(false));
    let (held_tx, held_rx) = mpsc::channel();
    let readers = {
        let stop = stop.clone();
        let what = test.to_string();
        spawn_in(topo.peer_ns, move || {
            let mut conns = Vec::with_capacity(SLOW_READERS);
            for i in 0..SLOW_READERS {
                let s = connect_small_rcvbuf(addr, SLOW_RCVBUF)
                    .unwrap_or_else(|e| panic!("{what}: slow reader {i}: {e}"));
                s.set_nonblocking(true).unwrap();
                conns.push(s);
            }
            held_tx.send(()).ok();
            let buf = [0x5au8; 16 * 1024];
            let mut pushed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut progress = false;
                for s in &mut conns {
                    match s.write(&buf) {
                        Ok(n) => {
                            pushed += n as u64;
                            progress = true;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{what}: slow reader write: {e}"),
                    }
                }
                if !progress {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            pushed
        })
    };
    held_rx
        .recv_timeout(CHECK_DEADLINE)
        .unwrap_or_else(|_| panic!("{test}: slow readers not connected in time"));
    thread::sleep(SLOW_FILL);
    let log_from = server.log.lock().unwrap_or_else(|e| e.into_inner()).len();
    let (during, failed) = join(super::arp_flood::legit_client(
        topo.peer_ns,
        addr,
        SLOW_SECS,
    ));
    let rss_held = vm_rss(pid);
    let log_to = server.log.lock().unwrap_or_else(|e| e.into_inner()).len();
    stop.store(true, Ordering::Relaxed);
    let pushed = join(readers);
    // The readers' sockets are closed: their connections end (RST, unread
    // data) and their chunks come back.
    let (after, f2) = join(super::arp_flood::legit_client(topo.peer_ns, addr, 1.0));
    let (mut low, mut high, mut cap) = (u64::MAX, 0u64, 0u64);
    for line in server
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .take(log_to)
        .skip(log_from)
    {
        if let Some((used, c)) = chunks_in_use(line) {
            low = low.min(used);
            high = high.max(used);
            cap = c;
        }
    }
    let rate_before = before as f64 / 2.0;
    let rate_during = during as f64 / SLOW_SECS;
    eprintln!(
        "{test}: {SLOW_READERS} slow readers pushed {} KiB; chunks in use while measured \
         {low}..{high} of {cap}; legit connects/s: {rate_before:.0} before, {rate_during:.0} \
         during ({:.0} %), {after} in 1 s after; failures {failed}; VmRSS {} KiB at start, \
         {} KiB held",
        pushed / 1024,
        100.0 * rate_during / rate_before.max(1.0),
        rss_before / 1024,
        rss_held / 1024
    );
    assert!(cap > 0, "{test}: no stats line while measured");
    assert!(
        low >= cap * 3 / 4,
        "{test}: the pool was not held under pressure ({low}..{high} of {cap} chunks)"
    );
    assert_eq!(failed + f2, 0, "{test}: failed echoes");
    assert!(
        rate_during >= SLOW_MIN_FRACTION * rate_before,
        "{test}: {rate_during:.0}/s with slow readers < {SLOW_MIN_FRACTION} × {rate_before:.0}/s"
    );
    assert!(after > 0, "{test}: served after the slow readers left");
    assert!(rss_before > 0, "{test}: no VmRSS for pid {pid}");
    assert!(
        rss_held <= rss_before + IDLE_RSS_GROWTH_MAX,
        "{test}: VmRSS grew from {rss_before} to {rss_held} bytes (bound {IDLE_RSS_GROWTH_MAX})"
    );
    server.finish();
}
