//! `iface_receive`: a whole [`Stack`] over the in-memory NIC, fed
//! fuzzer-described frames from the peer port, with timers advanced and a
//! listener whose connections the fuzzer can use.
//!
//! Invariants: no panic; every frame the stack sends is a well-formed
//! Ethernet frame (ARP or IPv4 whose checksums verify, TCP included); the
//! frame pool never loses a frame; after every socket is closed and time
//! has run past every timer, no socket, flow, chunk, frame or ARP-queued
//! packet is left.

use std::net::SocketAddrV4;

use arbitrary::{Arbitrary, Unstructured};
use mtcp_stack::nic::memory::MemoryNic;
use mtcp_stack::nic::{FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::SocketId;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::udp::UdpConfig;
use mtcp_stack::wire::arp::{ArpPacket, ArpRepr};
use mtcp_stack::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use mtcp_stack::wire::frame::parse_tcp_frame;
use mtcp_stack::wire::icmp::{Icmpv4Packet, Icmpv4Repr};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr};

use crate::frames::{FrameSpec, PEER_MAC};
use crate::model::{split, Record, Tracker, LISTEN_PORT, LOCAL, PEER_PORT, REMOTE};
use crate::tcp_harness::{config, CfgSpec};

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// A frame from the peer.
    Frame(FrameSpec),
    /// Several frames in one RX burst.
    Burst(Vec<FrameSpec>),
    /// Advance time (milliseconds).
    Advance(u16),
    /// Advance time (seconds).
    AdvanceSecs(u8),
    /// Write on a socket.
    Write(u8, u16),
    /// Read from a socket.
    Read(u8, u16),
    /// Close a socket.
    Close(u8),
    /// Active open to a peer port (resolved through ARP when `other`).
    Connect(u8, bool),
}

/// The settings read from an input's header.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Settings {
    cfg: CfgSpec,
    /// Start with the peer's ARP entry known.
    arp_known: bool,
}

const MAX_STEPS: usize = 64;
const MAX_BURST: usize = 8;
const DRAIN_ROUNDS: usize = 100_000;
const FRAMES: usize = 128;

struct Harness {
    stack: Stack,
    peer: Box<dyn NicQueue>,
    pool: FramePool,
    rx: Vec<mtcp_stack::nic::Frame>,
    now: Instant,
    listener: SocketId,
    ids: Vec<SocketId>,
    tracker: Tracker,
    buf: Vec<u8>,
    wbuf: Vec<u8>,
}

/// Checks one frame the stack sent.
fn check_sent(frame: &[u8], tracker: &mut Tracker) {
    let f = EthernetFrame::new_checked(frame).expect("sent frame has a header");
    let eth = EthernetRepr::parse(&f).expect("sent frame parses");
    assert_eq!(eth.vlan, None);
    match eth.ethertype {
        EtherType::Arp => {
            let p = ArpPacket::new_checked(f.payload()).expect("sent ARP is checked");
            ArpRepr::parse(&p).expect("sent ARP parses");
        }
        EtherType::Ipv4 => {
            let p = Ipv4Packet::new_checked(f.payload()).expect("sent IPv4 is checked");
            let ip = Ipv4Repr::parse(&p, true).expect("sent IPv4 parses");
            match ip.protocol {
                IpProtocol::Tcp => {
                    let (_, ip, seg) = parse_tcp_frame(frame, true).expect("sent TCP parses");
                    tracker.observe(ip.dst_addr, &seg);
                }
                IpProtocol::Icmp => {
                    let i = Icmpv4Packet::new_checked(p.payload()).expect("sent ICMP is checked");
                    assert!(i.verify_checksum(), "sent ICMP checksum");
                    // Echo replies parse; ICMP errors (once the stack sends
                    // them) are not echo messages.
                    let _ = Icmpv4Repr::parse(&i, true);
                }
                other => panic!("stack sent IP protocol {other:?}"),
            }
        }
        other => panic!("stack sent EtherType {other:?}"),
    }
}

impl Harness {
    fn new(input: Settings) -> Harness {
        let (a, b) = MemoryNic::pair(1, 256);
        let cfg = StackConfig {
            addr: Ipv4Cidr {
                address: LOCAL,
                prefix_len: 24,
            },
            gateway: None,
            mac: None,
            tcp: config(input.cfg),
            udp: UdpConfig::default(),
            frames: FRAMES,
            rx_batch: 16,
        };
        let mut stack = Stack::new(cfg, a.split_boxed().remove(0)).expect("valid config");
        let now = Instant::from_secs(1);
        if input.arp_known {
            stack
                .iface_mut()
                .arp_cache_mut()
                .insert(REMOTE, PEER_MAC, now);
        }
        let listener = stack
            .tcp_mut()
            .listen(SocketAddrV4::new(LOCAL, LISTEN_PORT), 4)
            .expect("listen");
        Harness {
            stack,
            peer: b.split_boxed().remove(0),
            pool: FramePool::new(FRAMES),
            rx: Vec::with_capacity(FRAMES),
            now,
            listener,
            ids: Vec::new(),
            tracker: Tracker::default(),
            buf: vec![0; 1 << 16],
            wbuf: vec![0x6d; 1 << 16],
        }
    }

    /// One tick of the stack, then the peer reads and checks what it sent.
    fn tick(&mut self) {
        self.stack.poll(self.now);
        self.stack.flush(self.now);
        loop {
            let n = self.peer.rx_burst(&mut self.pool, &mut self.rx, FRAMES);
            for f in self.rx.drain(..) {
                check_sent(f.as_slice(), &mut self.tracker);
                self.pool.free(f);
            }
            if n == 0 {
                break;
            }
        }
        let tcp = self.stack.tcp_mut();
        while let Ok(c) = tcp.accept(self.listener) {
            self.ids.push(c);
        }
        let cfg = self.stack.tcp().config();
        assert!(self.stack.tcp().chunks_in_use() <= cfg.chunk_count);
        assert!(self.stack.tcp().sockets_in_use() <= cfg.max_connections);
        assert!(self.stack.frames_available() <= self.stack.frames_capacity());
    }

    fn send(&mut self, frames: &[&FrameSpec]) {
        let ours = self.stack.iface().config().mac;
        let built: Vec<Vec<u8>> = frames
            .iter()
            .map(|spec| spec.build(ours, &self.tracker))
            .collect();
        let refs: Vec<&[u8]> = built.iter().map(Vec::as_slice).collect();
        self.send_raw(&refs);
    }

    fn send_raw(&mut self, frames: &[&[u8]]) {
        let mut out = Vec::with_capacity(frames.len());
        for bytes in frames {
            let Some(mut f) = self.pool.alloc() else {
                break;
            };
            if f.copy_from(bytes).is_err() {
                // Longer than a frame buffer: the device would not deliver it.
                self.pool.free(f);
                continue;
            }
            out.push(f);
        }
        self.peer.tx_burst(&mut out, &mut self.pool);
        for f in out.drain(..) {
            self.pool.free(f);
        }
        self.tick();
    }

    fn sock(&self, n: u8) -> Option<SocketId> {
        if self.ids.is_empty() {
            None
        } else {
            Some(self.ids[usize::from(n) % self.ids.len()])
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Frame(f) => self.send(&[f]),
            Step::Burst(fs) => {
                let v: Vec<&FrameSpec> = fs.iter().take(MAX_BURST).collect();
                self.send(&v);
            }
            Step::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.tick();
            }
            Step::AdvanceSecs(s) => {
                self.now += Duration::from_secs(u64::from(*s));
                self.tick();
            }
            Step::Write(n, len) => {
                if let Some(id) = self.sock(*n) {
                    let len = usize::from(*len);
                    let _ = self.stack.tcp_mut().send(id, &self.wbuf[..len]);
                    self.tick();
                }
            }
            Step::Read(n, len) => {
                if let Some(id) = self.sock(*n) {
                    let len = usize::from(*len);
                    let _ = self.stack.tcp_mut().recv(id, &mut self.buf[..len]);
                    self.tick();
                }
            }
            Step::Close(n) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.stack.tcp_mut().close(id);
                    self.tick();
                }
            }
            Step::Connect(p, other) => {
                let ip = if *other { crate::model::OTHER } else { REMOTE };
                let port = PEER_PORT + 1 + u16::from(*p) % 3;
                let now = self.now;
                if let Ok(id) = self
                    .stack
                    .tcp_mut()
                    .connect(now, SocketAddrV4::new(ip, port), None)
                {
                    self.ids.push(id);
                }
                self.tick();
            }
        }
    }

    fn close_and_drain(&mut self) {
        let tcp = self.stack.tcp_mut();
        for id in core::mem::take(&mut self.ids) {
            let _ = tcp.close(id);
        }
        tcp.close(self.listener).expect("listener still open");
        self.tick();
        for id in core::mem::take(&mut self.ids) {
            let _ = self.stack.tcp_mut().close(id);
        }
        let mut rounds = 0;
        while let Some(at) = self.stack.next_deadline() {
            rounds += 1;
            assert!(
                rounds < DRAIN_ROUNDS,
                "timers never stop: {:?} at {:?}",
                self.stack.tcp(),
                self.now
            );
            self.now = at.max(self.now + Duration::from_millis(1));
            self.tick();
        }
        let tcp = self.stack.tcp();
        assert_eq!(tcp.sockets_in_use(), 0, "socket leaked: {tcp:?}");
        assert_eq!(tcp.flows(), 0, "flow leaked: {tcp:?}");
        assert_eq!(tcp.chunks_in_use(), 0, "chunk leaked: {tcp:?}");
        assert!(!self.stack.has_pending_work(), "work left: {tcp:?}");
        assert_eq!(
            self.stack.frames_available(),
            self.stack.frames_capacity(),
            "frame leaked"
        );
        assert_eq!(self.stack.iface().arp_cache().queued(), 0, "ARP queue left");
        let reassembly = self.stack.iface().reassembly();
        assert_eq!(reassembly.in_use(), 0, "reassembly context left");
        assert_eq!(reassembly.bytes_held(), 0, "fragment bytes left");
        assert_eq!(self.pool.available(), self.pool.capacity(), "peer frames");
    }
}

/// Runs one `iface_receive` input (see [`crate::model::split`]): raw
/// records are whole frames from the peer, structured ones [`Step`]s.
pub fn run(data: &[u8]) {
    let (header, records) = split(data);
    let settings = Settings::arbitrary(&mut Unstructured::new(&header)).unwrap_or(Settings {
        cfg: CfgSpec::DEFAULT,
        arp_known: true,
    });
    let mut h = Harness::new(settings);
    for r in records {
        match r {
            Record::Raw(frame) => h.send_raw(&[frame]),
            Record::Structured(bytes) => {
                let Ok(steps) = Vec::<Step>::arbitrary_take_rest(Unstructured::new(bytes)) else {
                    continue;
                };
                for step in steps.iter().take(MAX_STEPS) {
                    h.step(step);
                }
            }
        }
    }
    h.close_and_drain();
}
