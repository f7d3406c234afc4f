//! The DPDK backend: the production path for real NICs (feature `dpdk`).
//!
//! [`DpdkDevice::open`] initialises DPDK's environment abstraction layer
//! (EAL) once per process, configures one ethdev port with one RX/TX queue
//! pair per core and returns one [`DpdkQueue`] per pair. Each queue owns its
//! own mbuf pool and moves to its core's thread.
//!
//! ```text
//!   rte_eal_init (once)  ─►  port: configure(n, n, RSS) ─► start ─► link up
//!                               │ queue 0 ◄─ mempool 0 ─► DpdkQueue (core 0)
//!                               │ queue 1 ◄─ mempool 1 ─► DpdkQueue (core 1)
//!   last DpdkQueue dropped  ─►  stop, promiscuous restored, close,
//!                               mempools freed, rte_eal_cleanup
//! ```
//!
//! **Steering.** With more than one queue the port is programmed for RSS:
//! Toeplitz over IPv4 addresses and TCP ports with a symmetric key
//! ([`rss::SYMMETRIC_KEY`](super::rss::SYMMETRIC_KEY), `0x6d5a` repeated to
//! the device's key length) and a redirection table whose entry `i` is queue
//! `i % n`, the layout of [`rss::Reta`](super::rss::Reta). A driver without
//! RSS for those flow types (net_ring, net_af_packet, net_tap, …) gets one
//! queue whatever was asked; [`DpdkQueue::hardware_rss`] is then false and
//! the runtime must steer flows in software.
//!
//! **Copies.** The [`NicQueue`] trait is copy-based: `rx_burst` copies each
//! mbuf into a pool [`Frame`] and frees the mbuf; `tx_burst` copies each
//! frame into a fresh mbuf. Parsing in place in the mbuf (and emitting
//! straight into one) is a follow-up that needs a zero-copy trait.
//!
//! **Threads.** DPDK keeps per-lcore mempool caches indexed by the calling
//! thread's lcore id; the runtime's core threads are not EAL lcores. The
//! pools are therefore created with a cache size of 0: every get and put
//! goes to the pool's lock-free ring, which is safe from any thread. Each
//! pool serves one queue, used by one thread, so the ring sees no
//! contention. (Registering every core thread with `rte_thread_register`
//! and enabling caches is a possible optimisation.) `rte_eal_init` pins the
//! calling thread to the first lcore's CPU; [`DpdkDevice::open`] restores the
//! caller's CPU affinity afterwards, so the runtime pins its threads itself.
//!
//! **Network namespaces.** Kernel-backed virtual devices (net_af_packet,
//! net_af_xdp, net_tap) open their sockets, and later run their control
//! operations, in the network namespace of the calling thread. Open the
//! device from a thread inside the namespace of the interface; the port
//! remembers that namespace and its shutdown (promiscuous mode restored,
//! XDP program detached) runs there, whichever thread drops the last queue.
//!
//! **net_af_xdp.** DPDK 22.11's AF_XDP PMD turns the RX pool itself into
//! the XDP UMEM and assumes its objects are packed; its queues therefore get
//! a pool built with `RTE_MEMPOOL_F_NO_IOVA_CONTIG` (see `create_pool` and
//! docs/dpdk.md), every other driver one from `rte_pktmbuf_pool_create`.
//!
//! **Once per process.** EAL can be initialised once per process and never
//! again after `rte_eal_cleanup`. A second [`DpdkDevice::open`] reuses the
//! first initialisation (its EAL arguments are ignored, with a warning when
//! they differ); an open after the last queue of every device was dropped
//! (and EAL cleaned up) fails with `NicError::Io(EALREADY)`. Tests therefore
//! put each EAL configuration in its own test binary.
#![allow(unsafe_code)]

use core::fmt;
use core::ptr;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_uint};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant as StdInstant;

use mtcp_dpdk_sys as sys;

use super::{Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters};
use crate::time::Duration;
use crate::wire::ethernet::{EtherType, EthernetAddress, EthernetFrame};
use crate::wire::icmp::Icmpv4Packet;
use crate::wire::ipv4::{IpProtocol, Ipv4Packet};
use crate::wire::tcp::TcpPacket;

/// Most mbufs handled by one `rte_eth_rx_burst` / `rte_eth_tx_burst` call.
pub const BURST: usize = 64;

/// Frames handed to `rte_eth_tx_burst` per call: mTCP's TX batch. (A
/// net_af_xdp stall once blamed on burst size was the PMD's UMEM sizing,
/// see `create_pool`; the PMD itself re-kicks the kernel while `sendto`
/// answers `EAGAIN`, so larger bursts drain too.)
pub const TX_BURST: usize = 32;

/// Bytes of packet data an mbuf holds (DPDK's default data room minus its
/// headroom): a whole [`Frame`](super::FRAME_CAPACITY) fits in one mbuf.
const MBUF_DATA_ROOM: u16 = sys::MTCP_RTE_MBUF_DEFAULT_BUF_SIZE as u16;
const MBUF_DATA_LEN: usize =
    (sys::MTCP_RTE_MBUF_DEFAULT_BUF_SIZE - sys::MTCP_RTE_PKTMBUF_HEADROOM) as usize;
const _: () = assert!(MBUF_DATA_LEN >= super::FRAME_CAPACITY);

/// Settings of [`DpdkDevice::open_with`]; [`Default`] gives the values
/// [`DpdkDevice::open`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdkOptions {
    /// RX descriptors per queue (adjusted to the driver's limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the driver's limits).
    pub tx_desc: u16,
    /// Mbufs in each queue's pool. Must cover the RX ring, the TX ring and
    /// one burst; a power of two minus one uses the pool's ring best.
    pub mbufs_per_queue: u32,
    /// How long `open` waits for the link to come up before it goes on
    /// with a warning.
    pub link_timeout: std::time::Duration,
    /// Turn promiscuous mode on (it is restored on close). Needed when the
    /// stack's MAC differs from the port's.
    pub promiscuous: bool,
}

impl Default for DpdkOptions {
    fn default() -> Self {
        DpdkOptions {
            rx_desc: 1024,
            tx_desc: 1024,
            mbufs_per_queue: 4095,
            link_timeout: std::time::Duration::from_secs(5),
            promiscuous: true,
        }
    }
}

/// Counters of a [`DpdkQueue`] beyond the trait's [`QueueCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DpdkCounters {
    /// Received frames dropped because the device or a software check found
    /// a bad IPv4/TCP/ICMP checksum (only with RX checksum offload).
    pub rx_bad_checksum: u64,
    /// Received frames dropped because they did not fit one mbuf segment or
    /// one [`Frame`].
    pub rx_oversize: u64,
    /// `tx_burst` calls cut short because the mbuf pool could not supply a
    /// burst (the frames stay in `frames`).
    pub tx_no_mbuf: u64,
    /// Frames taken by `tx_burst` but dropped: longer than the MTU allows.
    pub tx_oversize: u64,
}

/// Opens DPDK ports. See the module docs.
#[derive(Debug)]
pub struct DpdkDevice(());

/// The process-wide EAL state.
#[derive(Debug)]
struct Registry {
    /// Ports opened by live devices.
    open_ports: Vec<u16>,
    /// `rte_eal_cleanup` has run: EAL is gone for good.
    cleaned_up: bool,
}

static EAL: OnceLock<Result<Vec<String>, NicError>> = OnceLock::new();
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    open_ports: Vec::new(),
    cleaned_up: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the registry consistent (every
    // update is a single push/retain), so a poisoned lock is still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A DPDK return value (`-errno`) or `rte_errno` as a [`NicError`].
fn rte_error(ret: c_int) -> NicError {
    let errno = if ret < 0 { -ret } else { errno_now() };
    NicError::Io(if errno == 0 { libc::EIO } else { errno })
}

fn errno_now() -> c_int {
    // SAFETY: reads the calling thread's rte_errno; no other state.
    unsafe { sys::mtcp_rte_errno() }
}

fn rte_strerror(errno: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string, valid until the next call on this thread; it
    // is copied at once.
    unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

fn check(what: &str, ret: c_int) -> Result<(), NicError> {
    if ret < 0 {
        log::error!("dpdk: {what} failed: {}", rte_strerror(-ret));
        Err(rte_error(ret))
    } else {
        Ok(())
    }
}

/// Runs `rte_eal_init` with `args` the first time it is called in the
/// process; later calls return the first call's result.
fn eal_init(args: &[String]) -> Result<(), NicError> {
    let first = EAL.get_or_init(|| eal_init_now(args).map(|()| args.to_vec()));
    match first {
        Ok(used) => {
            if used.as_slice() != args {
                log::warn!(
                    "dpdk: EAL already initialised with {used:?}; ignoring {args:?} (EAL runs once per process)"
                );
            }
            Ok(())
        }
        Err(e) => Err(*e),
    }
}

fn eal_init_now(args: &[String]) -> Result<(), NicError> {
    let mut owned = Vec::with_capacity(args.len() + 1);
    owned.push(CString::new("mtcp").map_err(|_| NicError::InvalidArgument)?);
    for a in args {
        owned.push(CString::new(a.as_str()).map_err(|_| NicError::InvalidArgument)?);
    }
    // EAL keeps pointers into argv (device arguments, the program name) for
    // the life of the process, and getopt permutes the array: both the
    // strings and the array are leaked, once per process.
    let argv: &'static mut [*mut c_char] =
        Vec::leak(owned.into_iter().map(CString::into_raw).collect::<Vec<_>>());
    let argc = c_int::try_from(argv.len()).map_err(|_| NicError::InvalidArgument)?;

    let affinity = CpuAffinity::save();
    // SAFETY: argv holds argc valid NUL-terminated strings that live for
    // the rest of the process; EAL has not been initialised (OnceLock).
    let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if let Some(a) = affinity {
        a.restore();
    }
    if ret < 0 {
        let errno = errno_now();
        log::error!(
            "dpdk: rte_eal_init({args:?}) failed: {}",
            rte_strerror(errno)
        );
        return Err(NicError::Io(if errno == 0 { libc::EINVAL } else { errno }));
    }
    Ok(())
}

/// The calling thread's CPU mask, saved around `rte_eal_init` (which pins
/// the thread to the main lcore).
struct CpuAffinity(libc::cpu_set_t);

impl CpuAffinity {
    fn save() -> Option<CpuAffinity> {
        // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and
        // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes.
        unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            (libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
                .then_some(CpuAffinity(set))
        }
    }

    fn restore(&self) {
        // SAFETY: passes a valid cpu_set_t of the stated size for this thread.
        let ret =
            unsafe { libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if ret != 0 {
            log::warn!("dpdk: could not restore the CPU affinity after rte_eal_init");
        }
    }
}

/// One configured port, shared by its queues; dropping the last queue
/// drops it and shuts the port (and, if it was the last port, EAL) down.
struct Port {
    id: u16,
    name: String,
    /// Promiscuous mode was off and we turned it on.
    promisc_enabled_by_us: bool,
    started: bool,
    /// Created in `open`; freed after the port is closed.
    pools: Vec<*mut sys::rte_mempool>,
    /// The open succeeded: the last drop cleans up EAL.
    complete: bool,
    /// The network namespace of the thread that opened the port. Kernel
    /// backed PMDs (af_packet, af_xdp, tap) run their control operations
    /// (promiscuous mode, XDP detach) with sockets and ioctls in the
    /// calling thread's namespace, so the shutdown runs there too.
    netns: Option<std::fs::File>,
}

// SAFETY: the mempool pointers are only dereferenced by DPDK calls that are
// thread-safe for a pool without per-lcore cache (cache size 0), and only
// freed in Drop, when no queue uses them any more.
unsafe impl Send for Port {}
// SAFETY: as above; `Port` has no interior mutability, and the queues share
// it only to read `id` and to drop it.
unsafe impl Sync for Port {}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("queues", &self.pools.len())
            .finish()
    }
}

/// The calling thread's network namespace, as an open file.
fn current_netns() -> Option<std::fs::File> {
    std::fs::File::open("/proc/thread-self/ns/net").ok()
}

/// Same namespace: same (device, inode) pair.
fn same_file(a: &std::fs::File, b: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => true,
    }
}

impl Port {
    fn shutdown(&mut self) {
        // SAFETY (all calls below): `id` is a valid port this process
        // configured and owns (registry); no queue is left to use it or
        // its pools, since every queue holds an Arc to this Port.
        unsafe {
            if self.started {
                let ret = sys::rte_eth_dev_stop(self.id);
                if ret < 0 {
                    log::warn!(
                        "dpdk: rte_eth_dev_stop({}) failed: {}",
                        self.id,
                        rte_strerror(-ret)
                    );
                }
            }
            if self.promisc_enabled_by_us {
                let ret = sys::rte_eth_promiscuous_disable(self.id);
                if ret < 0 {
                    log::warn!(
                        "dpdk: port {}: restoring promiscuous mode: {}",
                        self.id,
                        rte_strerror(-ret)
                    );
                }
            }
            let ret = sys::rte_eth_dev_close(self.id);
            if ret < 0 {
                log::warn!(
                    "dpdk: rte_eth_dev_close({}) failed: {}",
                    self.id,
                    rte_strerror(-ret)
                );
            }
            for &pool in &self.pools {
                sys::rte_mempool_free(pool);
            }
        }
        self.pools.clear();
        let mut reg = registry();
        reg.open_ports.retain(|&p| p != self.id);
        if self.complete && reg.open_ports.is_empty() && !reg.cleaned_up {
            reg.cleaned_up = true;
            // SAFETY: no port is open and no queue or pool is left; EAL is
            // never used again in this process (registry.cleaned_up).
            let ret = unsafe { sys::rte_eal_cleanup() };
            if ret < 0 {
                log::warn!("dpdk: rte_eal_cleanup failed: {}", rte_strerror(-ret));
            }
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let here = current_netns();
        let elsewhere = match (&self.netns, &here) {
            (Some(opened), Some(here)) => !same_file(opened, here),
            _ => false,
        };
        if !elsewhere {
            self.shutdown();
            return;
        }
        // Dropped in another namespace than the one that opened the port:
        // shut down from a thread that enters the opening namespace.
        let ns = self.netns.take();
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Some(ns) = &ns {
                    // SAFETY: setns on a valid namespace fd; it affects only
                    // this short-lived thread.
                    let ret = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(ns), libc::CLONE_NEWNET) };
                    if ret != 0 {
                        log::warn!(
                            "dpdk: cannot enter the port's network namespace ({}); closing from here",
                            std::io::Error::last_os_error()
                        );
                    }
                }
                self.shutdown();
            });
        });
    }
}

impl DpdkDevice {
    /// Opens a port with [`DpdkOptions::default`]. See [`DpdkDevice::open_with`].
    ///
    /// # Errors
    /// As [`DpdkDevice::open_with`].
    pub fn open(
        eal_args: &[String],
        port: Option<u16>,
        queues: usize,
    ) -> Result<Vec<DpdkQueue>, NicError> {
        DpdkDevice::open_with(eal_args, port, queues, &DpdkOptions::default())
    }

    /// Initialises EAL with `eal_args` (first call in the process only),
    /// then configures `port` (the first available port when `None`) with
    /// up to `queues` RX/TX queue pairs, starts it, waits (bounded) for the
    /// link and returns one queue per pair, in queue order.
    ///
    /// Fewer queues than asked come back when the driver has fewer, or has
    /// no RSS for IPv4/TCP (then exactly one).
    ///
    /// When a configuration step fails the port is closed again (a virtual
    /// device is then gone until the process restarts); EAL stays up.
    ///
    /// # Errors
    /// - `InvalidArgument`: `queues` is 0, an argument holds a NUL byte, or
    ///   `port` is not a valid port.
    /// - `Io(ENODEV)`: EAL found no port at all.
    /// - `Io(EBUSY)`: the port is already open in this process.
    /// - `Io(EALREADY)`: EAL was cleaned up (every device was closed).
    /// - `Io(errno)`: `rte_eal_init` or a configuration step failed (the
    ///   log says which, with DPDK's message).
    pub fn open_with(
        eal_args: &[String],
        port: Option<u16>,
        queues: usize,
        opts: &DpdkOptions,
    ) -> Result<Vec<DpdkQueue>, NicError> {
        if queues == 0 || opts.mbufs_per_queue == 0 || opts.rx_desc == 0 || opts.tx_desc == 0 {
            return Err(NicError::InvalidArgument);
        }
        if registry().cleaned_up {
            return Err(NicError::Io(libc::EALREADY));
        }
        eal_init(eal_args)?;

        let id = match port {
            Some(p) => {
                // SAFETY: EAL is initialised; any u16 may be asked about.
                if unsafe { sys::rte_eth_dev_is_valid_port(p) } != 1 {
                    log::error!("dpdk: port {p} does not exist");
                    return Err(NicError::InvalidArgument);
                }
                p
            }
            None => {
                // SAFETY: EAL is initialised.
                let p = unsafe { sys::rte_eth_find_next(0) };
                if u32::from(p) >= sys::MTCP_RTE_MAX_ETHPORTS {
                    log::error!("dpdk: no ethdev port (check --vdev / the PCI binding)");
                    return Err(NicError::Io(libc::ENODEV));
                }
                p
            }
        };
        {
            let mut reg = registry();
            if reg.cleaned_up {
                return Err(NicError::Io(libc::EALREADY));
            }
            if reg.open_ports.contains(&id) {
                return Err(NicError::Io(libc::EBUSY));
            }
            reg.open_ports.push(id);
        }
        let mut port = Port {
            id,
            name: port_name(id),
            promisc_enabled_by_us: false,
            started: false,
            pools: Vec::new(),
            complete: false,
            netns: current_netns(),
        };
        let setup = configure(&mut port, queues, opts)?;
        port.complete = true;
        let port = Arc::new(port);
        log::info!(
            "dpdk: port {} ({}) up: {} queue(s), hardware RSS {}, mac {:?}, mtu {}, {:?}",
            port.id,
            port.name,
            setup.queues,
            setup.hardware_rss,
            setup.mac,
            setup.mtu,
            setup.caps
        );
        let out = (0..setup.queues)
            .map(|q| DpdkQueue {
                port: Arc::clone(&port),
                queue: q as u16,
                pool: port.pools[q],
                info: DeviceInfo {
                    mac: setup.mac,
                    mtu: setup.mtu,
                    queue: q,
                    queues: setup.queues,
                    caps: setup.caps,
                },
                hardware_rss: setup.hardware_rss,
                rx_offload: setup.rx_offload,
                rx_count_supported: setup.rx_count_supported,
                mbufs: [ptr::null_mut(); BURST],
                counters: QueueCounters::default(),
                extra: DpdkCounters::default(),
            })
            .collect();
        Ok(out)
    }
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as c_char; 64];
    // SAFETY: rte_eth_dev_get_name_by_port writes a NUL-terminated name of
    // at most RTE_ETH_NAME_MAX_LEN (64) bytes into buf.
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret != 0 {
        return format!("port{id}");
    }
    // SAFETY: buf is NUL-terminated (written above, zero-initialised).
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Drivers that accept an RSS configuration but do not steer by the
/// Toeplitz key and table we program: net_tap (the kernel's tun driver
/// picks the queue by its own flow hash unless rte_flow rules load a BPF
/// steering program). They get one queue, like drivers without RSS.
const RSS_KEY_IGNORED: &[&str] = &["net_tap"];

/// What `configure` found and set.
/// The driver name of DPDK's AF_XDP PMD.
const AF_XDP_DRIVER: &str = "net_af_xdp";

// The mempool ops `rte_pktmbuf_pool_create` would pick (the EAL's
// `--mbuf-pool-ops-name`, else the platform's, else "ring_mp_mc"); in
// librte_mbuf, which mtcp-dpdk-sys links, but not in its bindings.
extern "C" {
    fn rte_mbuf_best_mempool_ops() -> *const c_char;
}

/// A pool's object size (header + element + trailer), number of memory
/// chunks and the length of its first chunk, for logs and the af_xdp check.
fn pool_layout(pool: *mut sys::rte_mempool) -> (u64, u32, usize) {
    // SAFETY: `pool` is a populated pool owned by the caller; its memory
    // list is not modified while we read it (single thread, during open).
    unsafe {
        let p = &*pool;
        let obj = u64::from(p.header_size) + u64::from(p.elt_size) + u64::from(p.trailer_size);
        let first = p.mem_list.stqh_first;
        let len = if first.is_null() { 0 } else { (*first).len };
        (obj, p.nb_mem_chunks, len)
    }
}

/// Creates one queue's mbuf pool of `n` mbufs (cache size 0, see the module
/// docs) with room for a whole frame each.
///
/// `packed`: lay the objects out back to back in one memory chunk
/// (`RTE_MEMPOOL_F_NO_IOVA_CONTIG`), as net_af_xdp needs. DPDK 22.11's
/// af_xdp PMD (zero-copy-mempool build, `XDP_UMEM_UNALIGNED_CHUNK_FLAG`)
/// registers the RX pool itself as the XDP UMEM, sized
/// `populated_size * obj_size` from the first memory chunk
/// (`xdp_umem_configure`). `rte_pktmbuf_pool_create` asks for IOVA-contiguous
/// objects, which the mempool keeps from straddling a page: without
/// hugepages each 2368-byte object takes its own 4 KiB page, the pool spans
/// 4096 bytes per mbuf and the UMEM only covers the first ~58 % of it. Every
/// mbuf past that is outside the UMEM: the kernel drops its TX descriptors as
/// invalid (XDP_STATISTICS tx_invalid_descs) and skips it in the fill ring,
/// while rte_eth_tx_burst has reported the frames sent. (DPDK 23.11 sizes
/// the UMEM from `rte_mempool_get_mem_range` instead.) Packed objects need no
/// IOVA contiguity: the kernel copies in and out of the UMEM (veth, copy
/// mode) or maps it page by page.
fn create_pool(
    name: &CStr,
    n: u32,
    socket: c_int,
    packed: bool,
) -> Result<*mut sys::rte_mempool, NicError> {
    let fail = |what: &str| {
        let errno = errno_now();
        log::error!(
            "dpdk: {what} ({n} mbufs) failed: {} (is -m / the hugepage memory large enough?)",
            rte_strerror(errno)
        );
        NicError::Io(if errno == 0 { libc::ENOMEM } else { errno })
    };
    if !packed {
        // SAFETY: `name` is a valid C string; cache 0 (see the module docs).
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(name.as_ptr(), n as c_uint, 0, 0, MBUF_DATA_ROOM, socket)
        };
        if pool.is_null() {
            return Err(fail("rte_pktmbuf_pool_create"));
        }
        let (obj, chunks, first) = pool_layout(pool);
        log::debug!(
            "dpdk: mbuf pool {name:?}: {n} objects of {obj} bytes, {chunks} memory chunk(s), the first {first} bytes"
        );
        return Ok(pool);
    }
    // What rte_pktmbuf_pool_create does, with RTE_MEMPOOL_F_NO_IOVA_CONTIG.
    let elt_size = core::mem::size_of::<sys::rte_mbuf>() as c_uint + c_uint::from(MBUF_DATA_ROOM);
    let mut private = sys::rte_pktmbuf_pool_private {
        mbuf_data_room_size: MBUF_DATA_ROOM,
        mbuf_priv_size: 0,
        flags: 0,
    };
    // SAFETY: `name` is a valid C string; the private area is sized for
    // rte_pktmbuf_pool_private, which rte_pktmbuf_pool_init fills.
    let pool = unsafe {
        sys::rte_mempool_create_empty(
            name.as_ptr(),
            n as c_uint,
            elt_size,
            0,
            core::mem::size_of::<sys::rte_pktmbuf_pool_private>() as c_uint,
            socket,
            sys::RTE_MEMPOOL_F_NO_IOVA_CONTIG,
        )
    };
    if pool.is_null() {
        return Err(fail("rte_mempool_create_empty"));
    }
    // SAFETY: `pool` is a fresh, empty pool owned here (freed on every
    // error path); `private` outlives rte_pktmbuf_pool_init, which copies
    // it; rte_pktmbuf_init initialises each object as an mbuf of that pool.
    unsafe {
        let ret =
            sys::rte_mempool_set_ops_byname(pool, rte_mbuf_best_mempool_ops(), ptr::null_mut());
        if ret != 0 {
            sys::rte_mempool_free(pool);
            return Err(rte_error(ret)).inspect_err(|_| {
                log::error!(
                    "dpdk: rte_mempool_set_ops_byname failed: {}",
                    rte_strerror(-ret)
                )
            });
        }
        sys::rte_pktmbuf_pool_init(
            pool,
            (&mut private as *mut sys::rte_pktmbuf_pool_private).cast(),
        );
        let ret = sys::rte_mempool_populate_default(pool);
        if ret < 0 {
            sys::rte_mempool_free(pool);
            return Err(fail("rte_mempool_populate_default"));
        }
        sys::rte_mempool_obj_iter(pool, Some(sys::rte_pktmbuf_init), ptr::null_mut());
    }
    // The PMD maps `populated_size * obj_size` bytes from the start of the
    // first chunk: a pool split over several chunks, or padded, would leave
    // mbufs outside the UMEM again.
    let (obj, chunks, first) = pool_layout(pool);
    // SAFETY: `pool` is a valid, populated pool.
    let populated = u64::from(unsafe { (*pool).populated_size });
    if chunks != 1 || (first as u64) < populated * obj {
        log::error!(
            "dpdk: {AF_XDP_DRIVER}: mbuf pool {name:?} spans {chunks} memory chunk(s) (the first {first} bytes for {populated} objects of {obj}); the PMD needs them packed in one (more -m or hugepage memory)"
        );
        // SAFETY: the pool is ours and unused.
        unsafe { sys::rte_mempool_free(pool) };
        return Err(NicError::Io(libc::ENOMEM));
    }
    log::debug!(
        "dpdk: packed mbuf pool {name:?}: {populated} objects of {obj} bytes in {first} bytes"
    );
    Ok(pool)
}

struct Setup {
    queues: usize,
    hardware_rss: bool,
    rx_offload: bool,
    rx_count_supported: bool,
    mac: Option<EthernetAddress>,
    mtu: usize,
    caps: Capabilities,
}

fn configure(port: &mut Port, want: usize, opts: &DpdkOptions) -> Result<Setup, NicError> {
    let id = port.id;
    // SAFETY: a zeroed rte_eth_dev_info is a valid out-parameter (plain data
    // and null pointers); the port is valid.
    let mut info: sys::rte_eth_dev_info = unsafe { core::mem::zeroed() };
    // SAFETY: `info` is a valid, writable rte_eth_dev_info.
    check("rte_eth_dev_info_get", unsafe {
        sys::rte_eth_dev_info_get(id, &mut info)
    })?;

    let rss_hf = (sys::MTCP_RTE_ETH_RSS_IPV4 | sys::MTCP_RTE_ETH_RSS_NONFRAG_IPV4_TCP)
        & info.flow_type_rss_offloads;
    let max = usize::from(info.max_rx_queues.min(info.max_tx_queues)).max(1);
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: the driver name is a static NUL-terminated string.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    let key_ignored = RSS_KEY_IGNORED.contains(&driver.as_str());
    let hardware_rss =
        want > 1 && max > 1 && rss_hf & sys::MTCP_RTE_ETH_RSS_NONFRAG_IPV4_TCP != 0 && !key_ignored;
    let queues = if hardware_rss { want.min(max) } else { 1 };
    if want > 1 && !hardware_rss {
        log::warn!(
            "dpdk: port {id} ({}, driver {driver}) has no usable RSS for IPv4/TCP (max queues {max}, rss flow types {:#x}{}): one queue, the runtime must steer flows in software",
            port.name,
            info.flow_type_rss_offloads,
            if key_ignored { ", RSS key not honoured" } else { "" }
        );
    } else if queues < want {
        log::warn!("dpdk: port {id} has {max} queue pairs; using {queues} of the {want} asked");
    }

    // SAFETY: rte_eth_conf is plain data; all-zero is DPDK's documented
    // "defaults" configuration.
    let mut conf: sys::rte_eth_conf = unsafe { core::mem::zeroed() };
    // The key must stay alive until rte_eth_dev_configure has copied it.
    let key_len = match info.hash_key_size {
        0 => 40,
        n => usize::from(n),
    };
    let mut key: Vec<u8> = (0..key_len)
        .map(|i| super::rss::SYMMETRIC_KEY[i % 2])
        .collect();
    if hardware_rss {
        conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
        conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
    }
    let rx_cksum = sys::MTCP_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::MTCP_RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
    let rx_offload = info.rx_offload_capa & rx_cksum == rx_cksum;
    if rx_offload {
        conf.rxmode.offloads |= rx_cksum;
    }
    let tx_cksum = sys::MTCP_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | sys::MTCP_RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    let tx_offload = info.tx_offload_capa & tx_cksum == tx_cksum;
    if tx_offload {
        conf.txmode.offloads |= tx_cksum;
    }

    let n = queues as u16;
    // net_af_xdp overlays its UMEM on the RX pool and needs its objects
    // packed (see `create_pool`).
    let packed = driver == AF_XDP_DRIVER;
    // SAFETY: `conf` is a valid configuration; `key` outlives the call.
    check("rte_eth_dev_configure", unsafe {
        sys::rte_eth_dev_configure(id, n, n, &conf)
    })?;
    drop(key);

    let (mut rx_desc, mut tx_desc) = (opts.rx_desc, opts.tx_desc);
    // SAFETY: both out-parameters are valid u16s.
    check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
        sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc)
    })?;
    // SAFETY: a valid port.
    let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
    let socket = if socket < 0 {
        sys::MTCP_SOCKET_ID_ANY
    } else {
        socket
    };

    for q in 0..n {
        let name =
            CString::new(format!("mtcp_p{id}_q{q}")).map_err(|_| NicError::InvalidArgument)?;
        let pool = create_pool(&name, opts.mbufs_per_queue, socket, packed)?;
        port.pools.push(pool);
        // SAFETY: valid port and queue index (< n configured); NULL confs
        // select the driver's defaults with the port's offloads; `pool`
        // lives until after the port is closed (Port::drop).
        check("rte_eth_rx_queue_setup", unsafe {
            sys::rte_eth_rx_queue_setup(id, q, rx_desc, socket as c_uint, ptr::null(), pool)
        })?;
        // SAFETY: as above.
        check("rte_eth_tx_queue_setup", unsafe {
            sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket as c_uint, ptr::null())
        })?;
    }

    if opts.promiscuous {
        // SAFETY: a valid, configured port.
        unsafe {
            if sys::rte_eth_promiscuous_get(id) == 0 {
                let ret = sys::rte_eth_promiscuous_enable(id);
                if ret == 0 {
                    port.promisc_enabled_by_us = true;
                } else {
                    log::warn!("dpdk: port {id}: promiscuous mode: {}", rte_strerror(-ret));
                }
            }
        }
    }

    // SAFETY: a valid, configured port with all queues set up.
    check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(id) })?;
    port.started = true;

    if hardware_rss && info.reta_size > 0 {
        program_reta(id, usize::from(info.reta_size), queues);
    }
    wait_for_link(id, opts.link_timeout);

    let mut addr = sys::rte_ether_addr::default();
    // SAFETY: `addr` is a valid out-parameter.
    let mac = (unsafe { sys::rte_eth_macaddr_get(id, &mut addr) } == 0)
        .then_some(EthernetAddress(addr.addr_bytes))
        .filter(|m| *m != EthernetAddress([0; 6]));
    let mut mtu: u16 = 0;
    // SAFETY: `mtu` is a valid out-parameter.
    let mtu = match unsafe { sys::rte_eth_dev_get_mtu(id, &mut mtu) } {
        0 if mtu >= 68 => usize::from(mtu).min(super::FRAME_CAPACITY - 14),
        _ => 1500,
    };
    // SAFETY: valid port, queue 0 exists; a read-only query.
    let rx_count_supported = unsafe { sys::mtcp_rte_eth_rx_queue_count(id, 0) } >= 0;

    Ok(Setup {
        queues,
        hardware_rss,
        rx_offload,
        rx_count_supported,
        mac,
        mtu,
        caps: Capabilities {
            rx_checksum: rx_offload,
            tx_checksum: tx_offload,
            tso: false,
        },
    })
}

/// Points redirection-table entry `i` at queue `i % queues`, as
/// [`rss::Reta`](super::rss::Reta) assumes.
fn program_reta(id: u16, size: usize, queues: usize) {
    const GROUP: usize = sys::MTCP_RTE_ETH_RETA_GROUP_SIZE as usize;
    let mut groups = vec![
        sys::rte_eth_rss_reta_entry64 {
            mask: u64::MAX,
            reta: [0; GROUP],
        };
        size.div_ceil(GROUP)
    ];
    for i in 0..size {
        groups[i / GROUP].reta[i % GROUP] = (i % queues) as u16;
    }
    // SAFETY: `groups` holds ceil(size / 64) entries, as DPDK requires.
    let ret = unsafe { sys::rte_eth_dev_rss_reta_update(id, groups.as_mut_ptr(), size as u16) };
    if ret < 0 {
        log::warn!(
            "dpdk: port {id}: RETA update failed ({}); the driver's default table is used",
            rte_strerror(-ret)
        );
    }
}

fn wait_for_link(id: u16, timeout: std::time::Duration) {
    let start = StdInstant::now();
    loop {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: `link` is a valid out-parameter; the port is started.
        let ret = unsafe { sys::rte_eth_link_get_nowait(id, &mut link) };
        if ret == 0 && link.link_status() != 0 {
            log::info!("dpdk: port {id}: link up, {} Mbit/s", link.link_speed);
            return;
        }
        if start.elapsed() >= timeout {
            log::warn!("dpdk: port {id}: link still down after {timeout:?}; going on");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// One RX/TX queue pair of a DPDK port, owned by one core's thread.
///
/// The last queue of a device to be dropped stops and closes the port,
/// restores promiscuous mode, frees the mbuf pools and cleans up EAL.
pub struct DpdkQueue {
    port: Arc<Port>,
    queue: u16,
    pool: *mut sys::rte_mempool,
    info: DeviceInfo,
    hardware_rss: bool,
    rx_offload: bool,
    rx_count_supported: bool,
    mbufs: [*mut sys::rte_mbuf; BURST],
    counters: QueueCounters,
    extra: DpdkCounters,
}

// SAFETY: the queue is used by one thread at a time (`&mut self` for I/O);
// DPDK allows a queue to be polled from any single thread, and the pool has
// no per-lcore cache, so moving the queue between threads is sound. The
// `mbufs` array holds no live pointers between calls.
unsafe impl Send for DpdkQueue {}

impl fmt::Debug for DpdkQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpdkQueue")
            .field("port", &self.port)
            .field("queue", &self.queue)
            .field("info", &self.info)
            .field("counters", &self.counters)
            .finish()
    }
}

impl DpdkQueue {
    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    /// The port's device name (e.g. `net_ring0`, `0000:3b:00.0`).
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// True when the NIC steers flows to the queues by RSS; false when the
    /// device has a single queue and the runtime must steer in software.
    pub fn hardware_rss(&self) -> bool {
        self.hardware_rss
    }

    /// Mbufs free in this queue's pool.
    pub fn mbufs_available(&self) -> usize {
        // SAFETY: the pool lives as long as the port (held by self).
        unsafe { sys::rte_mempool_avail_count(self.pool) as usize }
    }

    /// Mbufs this queue's pool was created with.
    pub fn mbufs_total(&self) -> usize {
        // SAFETY: as above; `size` is set at creation and never changes.
        unsafe { (*self.pool).size as usize }
    }

    /// Counters beyond [`NicQueue::counters`].
    pub fn dpdk_counters(&self) -> DpdkCounters {
        self.extra
    }

    /// Checks a received IPv4 frame the device did not vouch for.
    fn software_checksums_ok(frame: &[u8]) -> bool {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return true; // not ours to judge: the stack drops it as malformed
        };
        if eth.ethertype() != EtherType::Ipv4 {
            return true;
        }
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            return true;
        };
        if !ip.verify_checksum() {
            return false;
        }
        if ip.more_frags() || ip.frag_offset() != 0 {
            return true;
        }
        match ip.protocol() {
            IpProtocol::Tcp => {
                TcpPacket::new_unchecked(ip.payload()).verify_checksum(ip.src_addr(), ip.dst_addr())
            }
            IpProtocol::Icmp => Icmpv4Packet::new_unchecked(ip.payload()).verify_checksum(),
            _ => true,
        }
    }

    /// With RX checksum offload on, [`Capabilities::rx_checksum`] promises
    /// the stack that no frame with a bad checksum arrives: drop what the
    /// device flagged bad and check in software what it did not flag good
    /// (ICMP, IP options, fragments, …).
    fn rx_checksum_ok(&self, m: *mut sys::rte_mbuf, data: &[u8]) -> bool {
        if !self.rx_offload {
            return true;
        }
        // SAFETY: `m` is a received mbuf owned by us until freed.
        let flags = unsafe { sys::mtcp_rte_pktmbuf_ol_flags(m) };
        let ip = flags & sys::MTCP_RTE_MBUF_F_RX_IP_CKSUM_MASK;
        let l4 = flags & sys::MTCP_RTE_MBUF_F_RX_L4_CKSUM_MASK;
        if ip == sys::MTCP_RTE_MBUF_F_RX_IP_CKSUM_BAD || l4 == sys::MTCP_RTE_MBUF_F_RX_L4_CKSUM_BAD
        {
            return false;
        }
        if ip == sys::MTCP_RTE_MBUF_F_RX_IP_CKSUM_GOOD
            && l4 == sys::MTCP_RTE_MBUF_F_RX_L4_CKSUM_GOOD
        {
            return true;
        }
        DpdkQueue::software_checksums_ok(data)
    }

    /// Sets the TX checksum offload request on `m` when the device has it.
    fn tx_offload(&self, m: *mut sys::rte_mbuf, data: &[u8]) {
        if !self.info.caps.tx_checksum {
            return;
        }
        if let Some((flags, l2, l3)) = tx_offload_flags(data) {
            // SAFETY: `m` is an mbuf we allocated and still own.
            unsafe { sys::mtcp_rte_pktmbuf_set_tx_offload(m, flags, l2, l3, 0) };
        }
    }
}

/// The mbuf offload flags and header lengths (L2, L3) asking the device to
/// fill a frame's checksums: IPv4 header checksum for every IPv4 frame, TCP
/// checksum for TCP. With TX checksum offload the stack leaves the IPv4
/// checksum zero and puts the pseudo-header sum in the TCP checksum field,
/// which is what DPDK's `RTE_MBUF_F_TX_*_CKSUM` expect. `None` for other
/// frames (ARP).
fn tx_offload_flags(frame: &[u8]) -> Option<(u64, u16, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let mut flags = sys::MTCP_RTE_MBUF_F_TX_IPV4 | sys::MTCP_RTE_MBUF_F_TX_IP_CKSUM;
    if ip.protocol() == IpProtocol::Tcp {
        flags |= sys::MTCP_RTE_MBUF_F_TX_TCP_CKSUM;
    }
    Some((flags, eth.header_len() as u16, ip.header_len() as u16))
}

impl NicQueue for DpdkQueue {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut taken = 0;
        // Bounded: each round asks for at most BURST and the loop ends when
        // the device has fewer, `max` is reached or the pool is empty.
        while taken < max {
            let want = (max - taken).min(BURST).min(pool.available());
            if want == 0 {
                if pool.available() == 0 && self.rx_pending() {
                    self.counters.rx_no_buffer += 1;
                }
                break;
            }
            // SAFETY: `mbufs` has room for BURST >= want pointers; the port
            // and queue are configured and started; this thread is the only
            // user of the queue (&mut self).
            let n = unsafe {
                sys::mtcp_rte_eth_rx_burst(
                    self.port.id,
                    self.queue,
                    self.mbufs.as_mut_ptr(),
                    want as u16,
                )
            } as usize;
            for i in 0..n {
                let m = self.mbufs[i];
                // SAFETY: the driver returned `m` as a valid mbuf, now ours.
                let (segs, len, data) = unsafe {
                    (
                        sys::mtcp_rte_pktmbuf_nb_segs(m),
                        usize::from(sys::mtcp_rte_pktmbuf_data_len(m)),
                        sys::mtcp_rte_pktmbuf_mtod(m).cast::<u8>().cast_const(),
                    )
                };
                if segs != 1 || len > super::FRAME_CAPACITY {
                    self.extra.rx_oversize += 1;
                    continue;
                }
                // SAFETY: the first (only) segment holds `len` bytes at
                // `data`, valid until the mbuf is freed below.
                let bytes = unsafe { core::slice::from_raw_parts(data, len) };
                if !self.rx_checksum_ok(m, bytes) {
                    self.extra.rx_bad_checksum += 1;
                    continue;
                }
                // `want` <= pool.available(): a frame is always there.
                if let Some(mut f) = pool.alloc() {
                    f.buffer_mut()[..len].copy_from_slice(bytes);
                    f.set_len(len);
                    self.counters.rx_frames += 1;
                    self.counters.rx_bytes += len as u64;
                    out.push(f);
                    taken += 1;
                }
            }
            if n > 0 {
                // SAFETY: mbufs[..n] are ours; none is used after this.
                unsafe { sys::rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), n as c_uint) };
            }
            if n < want {
                break;
            }
        }
        taken
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let max_len = self.info.mtu + 14;
        let mut done = 0;
        // Bounded: each round takes at least one frame or ends the loop.
        while let Some(first) = frames.first() {
            if first.len() > max_len {
                // Taken and dropped: it could never be sent.
                self.extra.tx_oversize += 1;
                pool.free(frames.remove(0));
                done += 1;
                continue;
            }
            // The run of sendable frames at the front, up to one TX burst.
            let want = frames
                .iter()
                .take(TX_BURST)
                .take_while(|f| f.len() <= max_len)
                .count();
            // SAFETY: the pool is valid; `mbufs` has room for BURST >= want.
            let ok = unsafe {
                sys::mtcp_rte_pktmbuf_alloc_bulk(self.pool, self.mbufs.as_mut_ptr(), want as c_uint)
            } == 0;
            if !ok {
                self.extra.tx_no_mbuf += 1;
                break;
            }
            for (i, f) in frames[..want].iter().enumerate() {
                let data = f.as_slice();
                let m = self.mbufs[i];
                // SAFETY: `m` is a fresh mbuf with MBUF_DATA_LEN >=
                // FRAME_CAPACITY bytes of tailroom, so append returns a
                // pointer to `data.len()` writable bytes.
                unsafe {
                    let dst = sys::mtcp_rte_pktmbuf_append(m, data.len() as u16).cast::<u8>();
                    debug_assert!(!dst.is_null());
                    ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
                }
                self.tx_offload(m, data);
            }
            // SAFETY: mbufs[..want] are filled mbufs; the driver takes
            // ownership of the first `sent`.
            let sent = unsafe {
                sys::mtcp_rte_eth_tx_burst(
                    self.port.id,
                    self.queue,
                    self.mbufs.as_mut_ptr(),
                    want as u16,
                )
            } as usize;
            if sent < want {
                // SAFETY: the unsent mbufs are still ours and unused.
                unsafe {
                    sys::rte_pktmbuf_free_bulk(
                        self.mbufs[sent..].as_mut_ptr(),
                        (want - sent) as c_uint,
                    )
                };
            }
            for f in frames.drain(..sent) {
                self.counters.tx_frames += 1;
                self.counters.tx_bytes += f.len() as u64;
                pool.free(f);
            }
            done += sent;
            if sent < want {
                break;
            }
        }
        done
    }

    fn rx_pending(&self) -> bool {
        if !self.rx_count_supported {
            return false;
        }
        // SAFETY: a read-only query on our configured queue.
        unsafe { sys::mtcp_rte_eth_rx_queue_count(self.port.id, self.queue) > 0 }
    }

    /// DPDK queues have no file descriptor to sleep on (RX interrupts need
    /// VFIO and driver support). With `rte_eth_rx_queue_count` this polls
    /// it every few microseconds; without, it sleeps at most 50 µs and
    /// returns, so the caller's next RX burst looks.
    fn wait_rx(&self, timeout: Duration) {
        if !self.rx_count_supported {
            std::thread::sleep(timeout.min(std::time::Duration::from_micros(50)));
            return;
        }
        let start = StdInstant::now();
        while start.elapsed() < timeout {
            if self.rx_pending() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_micros(10));
        }
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    //! What can be checked without EAL; the device itself is exercised by
    //! `tests/nic_dpdk.rs` over DPDK's virtual devices.
    use super::*;
    use crate::wire::checksum;

    /// An Ethernet + IPv4 frame around `l4` (protocol `proto`), with a
    /// correct header checksum.
    fn ipv4_frame(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let c = !checksum::data(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    fn icmp_echo() -> Vec<u8> {
        let mut m = vec![8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'];
        let c = !checksum::data(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn tcp_syn() -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0x02;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        let ph = checksum::pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 6, 20);
        let c = !checksum::combine(&[ph, checksum::data(&t)]);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }

    #[test]
    fn software_checksums_accept_good_frames() {
        assert!(DpdkQueue::software_checksums_ok(&ipv4_frame(
            1,
            &icmp_echo()
        )));
        assert!(DpdkQueue::software_checksums_ok(&ipv4_frame(6, &tcp_syn())));
        // Not IPv4, or too short to judge: left to the stack.
        assert!(DpdkQueue::software_checksums_ok(&[0xff; 42]));
        assert!(DpdkQueue::software_checksums_ok(&[0; 5]));
    }

    #[test]
    fn software_checksums_reject_corruption() {
        let mut f = ipv4_frame(1, &icmp_echo());
        *f.last_mut().unwrap() ^= 1;
        assert!(!DpdkQueue::software_checksums_ok(&f));
        let mut f = ipv4_frame(6, &tcp_syn());
        f[14 + 20 + 4] ^= 0x80; // sequence number
        assert!(!DpdkQueue::software_checksums_ok(&f));
        let mut f = ipv4_frame(6, &tcp_syn());
        f[14 + 8] -= 1; // TTL: the IPv4 header checksum breaks
        assert!(!DpdkQueue::software_checksums_ok(&f));
    }

    #[test]
    fn tx_offload_flags_by_protocol() {
        let tcp = tx_offload_flags(&ipv4_frame(6, &tcp_syn())).unwrap();
        assert_eq!(
            tcp,
            (
                sys::MTCP_RTE_MBUF_F_TX_IPV4
                    | sys::MTCP_RTE_MBUF_F_TX_IP_CKSUM
                    | sys::MTCP_RTE_MBUF_F_TX_TCP_CKSUM,
                14,
                20
            )
        );
        let icmp = tx_offload_flags(&ipv4_frame(1, &icmp_echo())).unwrap();
        assert_eq!(
            icmp.0,
            sys::MTCP_RTE_MBUF_F_TX_IPV4 | sys::MTCP_RTE_MBUF_F_TX_IP_CKSUM
        );
        let mut arp = ipv4_frame(1, &icmp_echo());
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(tx_offload_flags(&arp), None);
    }

    #[test]
    fn options_and_errors() {
        let o = DpdkOptions::default();
        assert!(
            o.mbufs_per_queue as usize > usize::from(o.rx_desc) + usize::from(o.tx_desc) + BURST
        );
        // Argument checks come before EAL is touched.
        assert_eq!(
            DpdkDevice::open(&[], None, 0).unwrap_err(),
            NicError::InvalidArgument
        );
        let bad = DpdkOptions {
            mbufs_per_queue: 0,
            ..o
        };
        assert_eq!(
            DpdkDevice::open_with(&[], None, 1, &bad).unwrap_err(),
            NicError::InvalidArgument
        );
        assert_eq!(rte_error(-libc::ENODEV), NicError::Io(libc::ENODEV));
    }
}
