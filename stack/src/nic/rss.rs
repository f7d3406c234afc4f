//! Receive-side scaling: the Toeplitz hash, its keys, the indirection table,
//! and the flow-key extraction a NIC performs on every received frame.
//!
//! A NIC hashes a frame's addresses (and ports, for TCP/UDP) with the
//! Toeplitz function under a 40-byte secret key, takes the low bits of the
//! hash as an index into its indirection table (RETA), and delivers the frame
//! to the queue found there. With the [`SYMMETRIC_KEY`] (`0x6d5a` repeated)
//! the hash is the same for both directions of a flow, so a connection's
//! frames in and out are handled by one core.
//!
//! For active opens the stack picks the local port so that replies land on
//! the connecting core: [`Rss::ports_for_queue`].

use core::fmt;
use core::ops::RangeInclusive;

use crate::wire::ethernet::{EtherType, EthernetFrame};
use crate::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
use crate::wire::{tcp, FourTuple};

/// A 40-byte Toeplitz key.
pub type RssKey = [u8; 40];

/// The key Microsoft publishes with its RSS verification vectors, the
/// default of many NICs. Not symmetric.
pub const MICROSOFT_KEY: RssKey = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// `0x6d5a` repeated: a key whose period (16 bits) divides the offset between
/// source and destination fields, so swapping them gives the same hash
/// (Woo and Park, "Scalable TCP Session Monitoring with Symmetric RSS").
pub const SYMMETRIC_KEY: RssKey = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = 0x6d;
        k[i + 1] = 0x5a;
        i += 2;
    }
    k
};

/// The Toeplitz hash of `input` under `key`, computed bit by bit.
///
/// Inputs longer than 36 bytes use key bits past the end of the key as zero.
/// This is the reference definition; [`Toeplitz`] is the table-driven
/// version used per packet.
pub fn toeplitz(key: &RssKey, input: &[u8]) -> u32 {
    let mut result = 0u32;
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | u32::from((next >> bit) & 1);
        }
    }
    result
}

/// The Toeplitz hash of an IPv4 address pair (`src`, `dst`), bit by bit.
pub fn hash_ipv4(key: &RssKey, src: Ipv4Address, dst: Ipv4Address) -> u32 {
    let mut input = [0u8; 8];
    input[..4].copy_from_slice(&src.octets());
    input[4..].copy_from_slice(&dst.octets());
    toeplitz(key, &input)
}

/// The Toeplitz hash of an IPv4 TCP/UDP 4-tuple, bit by bit.
pub fn hash_ipv4_tcp(
    key: &RssKey,
    src: Ipv4Address,
    dst: Ipv4Address,
    sport: u16,
    dport: u16,
) -> u32 {
    toeplitz(key, &tuple_bytes(src, dst, sport, dport))
}

fn tuple_bytes(src: Ipv4Address, dst: Ipv4Address, sport: u16, dport: u16) -> [u8; 12] {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&src.octets());
    input[4..8].copy_from_slice(&dst.octets());
    input[8..10].copy_from_slice(&sport.to_be_bytes());
    input[10..].copy_from_slice(&dport.to_be_bytes());
    input
}

/// The 32 key bits starting at bit `pos` (bits past the key are zero).
fn key_window(key: &RssKey, pos: usize) -> u32 {
    (0..32).fold(0u32, |acc, i| {
        let p = pos + i;
        let bit = key.get(p / 8).map_or(0, |b| (b >> (7 - p % 8)) & 1);
        (acc << 1) | u32::from(bit)
    })
}

/// Input bytes a [`Toeplitz`] table covers: an IPv4 4-tuple.
pub const TABLE_INPUT_LEN: usize = 12;

/// A table-driven Toeplitz hasher for inputs of up to
/// [`TABLE_INPUT_LEN`] bytes: one lookup and XOR per input byte.
#[derive(Clone)]
pub struct Toeplitz {
    key: RssKey,
    /// `table[i][b]`: the hash contribution of byte value `b` at offset `i`.
    table: Box<[[u32; 256]; TABLE_INPUT_LEN]>,
}

impl Toeplitz {
    /// Builds the tables for `key`.
    pub fn new(key: &RssKey) -> Toeplitz {
        let mut table = Box::new([[0u32; 256]; TABLE_INPUT_LEN]);
        for (i, row) in table.iter_mut().enumerate() {
            let windows: [u32; 8] = core::array::from_fn(|j| key_window(key, 8 * i + j));
            for (b, slot) in row.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|j| b & (0x80 >> j) != 0)
                    .fold(0, |acc, j| acc ^ windows[j]);
            }
        }
        Toeplitz { key: *key, table }
    }

    /// The key.
    pub fn key(&self) -> &RssKey {
        &self.key
    }

    /// The hash of `input`; bytes past [`TABLE_INPUT_LEN`] are ignored.
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |acc, (&b, row)| acc ^ row[usize::from(b)])
    }

    /// The hash of an IPv4 address pair.
    #[inline]
    pub fn hash_ipv4(&self, src: Ipv4Address, dst: Ipv4Address) -> u32 {
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&src.octets());
        input[4..].copy_from_slice(&dst.octets());
        self.hash(&input)
    }

    /// The hash of an IPv4 TCP/UDP 4-tuple.
    #[inline]
    pub fn hash_ipv4_tcp(&self, src: Ipv4Address, dst: Ipv4Address, sport: u16, dport: u16) -> u32 {
        self.hash(&tuple_bytes(src, dst, sport, dport))
    }

    /// The hash of the packets a host receives on flow `t`: from the
    /// remote side to the local one.
    #[inline]
    pub fn hash_received(&self, t: &FourTuple) -> u32 {
        self.hash_ipv4_tcp(t.remote_ip, t.local_ip, t.remote_port, t.local_port)
    }
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz")
            .field("key", &format_args!("{:02x?}", &self.key[..4]))
            .finish_non_exhaustive()
    }
}

/// Entries in the indirection table.
pub const RETA_SIZE: usize = 128;

/// The RSS indirection table: the low 7 bits of a hash pick an entry, the
/// entry names a queue.
#[derive(Clone, PartialEq, Eq)]
pub struct Reta {
    entries: [u16; RETA_SIZE],
    queues: usize,
}

impl Reta {
    /// Spreads `queues` queues round robin over the table, as NIC drivers do
    /// by default. `queues` is clamped to `1..=RETA_SIZE`.
    pub fn new(queues: usize) -> Reta {
        let queues = queues.clamp(1, RETA_SIZE);
        Reta {
            entries: core::array::from_fn(|i| (i % queues) as u16),
            queues,
        }
    }

    /// The number of queues the table spreads over.
    pub fn queues(&self) -> usize {
        self.queues
    }

    /// The queue for `hash`.
    #[inline]
    pub fn queue_for(&self, hash: u32) -> usize {
        usize::from(self.entries[hash as usize % RETA_SIZE])
    }

    /// Points entry `index` at `queue`. Out-of-range arguments are ignored
    /// and reported as `false`.
    pub fn set(&mut self, index: usize, queue: usize) -> bool {
        match self.entries.get_mut(index) {
            Some(e) if queue < self.queues => {
                *e = queue as u16;
                true
            }
            _ => false,
        }
    }

    /// The table's entries.
    pub fn entries(&self) -> &[u16; RETA_SIZE] {
        &self.entries
    }
}

impl fmt::Debug for Reta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reta")
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

/// What RSS hashes in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKey {
    /// An unfragmented IPv4 TCP or UDP packet: the 4-tuple, seen from the
    /// receiver (local: the packet's destination).
    Ipv4Ports(FourTuple),
    /// Any other IPv4 packet (ICMP, fragments, other protocols): the pair.
    Ipv4 {
        /// Source address.
        src: Ipv4Address,
        /// Destination address.
        dst: Ipv4Address,
    },
    /// An IPv4 frame too short or malformed to hash: hash 0, like a NIC.
    Unhashable,
    /// ARP or any other non-IPv4 frame.
    NotIpv4,
}

/// Extracts what RSS hashes from an Ethernet frame (one VLAN tag, 802.1Q
/// or 802.1ad, is skipped) through the `wire` views. Only the IPv4 header
/// has to be whole (Total Length is not looked at) and only the four port
/// bytes of the TCP/UDP header, as a NIC parses. Never panics, whatever
/// the bytes.
pub fn flow_key(frame: &[u8]) -> FlowKey {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return FlowKey::NotIpv4;
    };
    if eth.ethertype() != EtherType::Ipv4 {
        return FlowKey::NotIpv4;
    }
    let ip = Ipv4Packet::new_unchecked(eth.payload());
    if ip.check_header_len().is_err() || ip.version() != 4 {
        return FlowKey::Unhashable;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if matches!(ip.protocol(), IpProtocol::Tcp | IpProtocol::Udp) && !ip.is_fragment() {
        if let Some((sport, dport)) = tcp::ports(ip.after_header()) {
            return FlowKey::Ipv4Ports(FourTuple::of_received(src, sport, dst, dport));
        }
    }
    FlowKey::Ipv4 { src, dst }
}

/// Where RSS sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// To this queue.
    Queue(usize),
    /// To every queue (ARP and other non-IPv4 frames).
    AllQueues,
}

/// A NIC's RSS configuration: hasher plus indirection table.
#[derive(Debug, Clone)]
pub struct Rss {
    hasher: Toeplitz,
    reta: Reta,
}

impl Rss {
    /// RSS over `queues` queues with `key` and a round-robin table.
    pub fn new(key: &RssKey, queues: usize) -> Rss {
        Rss {
            hasher: Toeplitz::new(key),
            reta: Reta::new(queues),
        }
    }

    /// Symmetric RSS over `queues` queues: both directions of a flow land on
    /// the same queue.
    pub fn symmetric(queues: usize) -> Rss {
        Rss::new(&SYMMETRIC_KEY, queues)
    }

    /// The hasher.
    pub fn hasher(&self) -> &Toeplitz {
        &self.hasher
    }

    /// The indirection table.
    pub fn reta(&self) -> &Reta {
        &self.reta
    }

    /// The indirection table, writable.
    pub fn reta_mut(&mut self) -> &mut Reta {
        &mut self.reta
    }

    /// The hash of a flow key (0 for keys RSS does not hash).
    #[inline]
    pub fn hash_key(&self, key: &FlowKey) -> u32 {
        match *key {
            FlowKey::Ipv4Ports(t) => self.hasher.hash_received(&t),
            FlowKey::Ipv4 { src, dst } => self.hasher.hash_ipv4(src, dst),
            FlowKey::Unhashable | FlowKey::NotIpv4 => 0,
        }
    }

    /// Where a received frame goes: the RETA queue for IPv4, every queue for
    /// anything else.
    #[inline]
    pub fn steer(&self, frame: &[u8]) -> Steer {
        match flow_key(frame) {
            FlowKey::NotIpv4 => Steer::AllQueues,
            key => Steer::Queue(self.reta.queue_for(self.hash_key(&key))),
        }
    }

    /// The queue receiving TCP/UDP packets from `remote:remote_port` to
    /// `local:local_port`.
    #[inline]
    pub fn queue_for_reply(
        &self,
        local: Ipv4Address,
        local_port: u16,
        remote: Ipv4Address,
        remote_port: u16,
    ) -> usize {
        self.queue_for_tuple(&FourTuple::new(local, local_port, remote, remote_port))
    }

    /// The queue receiving the packets of flow `t` (from its remote side).
    #[inline]
    pub fn queue_for_tuple(&self, t: &FourTuple) -> usize {
        self.reta.queue_for(self.hasher.hash_received(t))
    }

    /// Local ports in `ports`, tried from `start` upwards and wrapping
    /// around, for which replies from `remote:remote_port` land on `queue`.
    /// Every port of the range is tried at most once. The caller skips ports
    /// it already uses.
    pub fn ports_for_queue(
        &self,
        local: Ipv4Address,
        remote: Ipv4Address,
        remote_port: u16,
        ports: RangeInclusive<u16>,
        start: u16,
        queue: usize,
    ) -> impl Iterator<Item = u16> + '_ {
        let lo = u32::from(*ports.start());
        let hi = u32::from(*ports.end());
        let span = if hi >= lo { hi - lo + 1 } else { 0 };
        let first = u32::from(start).clamp(lo, hi.max(lo)) - lo;
        (0..span)
            .map(move |i| (lo + (first + i) % span) as u16)
            .filter(move |&p| self.queue_for_reply(local, p, remote, remote_port) == queue)
    }
}

/// The first local port in `ports` (from `start`, wrapping) whose replies
/// from `remote:remote_port` land on `queue`; `None` when there is none.
/// Used by the TCP engine for active opens so the connection stays on the
/// connecting core.
pub fn ephemeral_port_for_queue(
    rss: &Rss,
    local: Ipv4Address,
    remote: Ipv4Address,
    remote_port: u16,
    ports: RangeInclusive<u16>,
    start: u16,
    queue: usize,
) -> Option<u16> {
    rss.ports_for_queue(local, remote, remote_port, ports, start, queue)
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;

    /// (src, sport, dst, dport, hash over addresses, hash over the 4-tuple),
    /// Microsoft's "Verifying the RSS hash calculation" IPv4 vectors.
    const VECTORS: [(&str, u16, &str, u16, u32, u32); 5] = [
        (
            "66.9.149.187",
            2794,
            "161.142.100.80",
            1766,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            "199.92.111.2",
            14230,
            "65.69.140.83",
            4739,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            "24.19.198.95",
            12898,
            "12.22.207.184",
            38024,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            "38.27.205.30",
            48228,
            "209.142.163.6",
            2217,
            0x82989176,
            0xafc7327f,
        ),
        (
            "153.39.163.191",
            44251,
            "202.188.127.2",
            1303,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    fn check_vector(src: Ipv4Address, sport: u16, dst: Ipv4Address, dport: u16, h2: u32, h4: u32) {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        assert_eq!(hash_ipv4(&MICROSOFT_KEY, src, dst), h2, "{src} {dst}");
        assert_eq!(t.hash_ipv4(src, dst), h2, "{src} {dst}");
        assert_eq!(hash_ipv4_tcp(&MICROSOFT_KEY, src, dst, sport, dport), h4);
        assert_eq!(t.hash_ipv4_tcp(src, dst, sport, dport), h4);
    }

    #[test]
    fn microsoft_vectors_embedded() {
        for (s, sp, d, dp, h2, h4) in VECTORS {
            check_vector(s.parse().unwrap(), sp, d.parse().unwrap(), dp, h2, h4);
        }
    }

    /// Checks every line of the shared vector file when it is present
    /// (`MTCP_RSS_VECTORS` overrides the location).
    #[test]
    fn microsoft_vectors_from_shared_file() {
        let root = env!("CARGO_MANIFEST_DIR");
        let candidates = [
            std::env::var("MTCP_RSS_VECTORS").unwrap_or_default(),
            format!("{root}/../../shared/data/rss-vectors.txt"),
            format!("{root}/../shared/data/rss-vectors.txt"),
        ];
        let Some(text) = candidates
            .iter()
            .filter(|p| !p.is_empty())
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            eprintln!("rss-vectors.txt not found; the embedded vectors still ran");
            return;
        };
        let mut checked = 0;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 6, "bad vector line: {line}");
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            check_vector(
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                hex(f[4]),
                hex(f[5]),
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} vectors in the file");
    }

    #[test]
    fn table_matches_bitwise_for_random_inputs() {
        let mut rng = Rng::new(11);
        for key in [MICROSOFT_KEY, SYMMETRIC_KEY] {
            let t = Toeplitz::new(&key);
            for _ in 0..2000 {
                let mut input = [0u8; TABLE_INPUT_LEN];
                rng.fill(&mut input);
                let n = rng.range(0, TABLE_INPUT_LEN as u64 + 1) as usize;
                assert_eq!(t.hash(&input[..n]), toeplitz(&key, &input[..n]));
            }
        }
    }

    #[test]
    fn symmetric_key_is_symmetric() {
        let t = Toeplitz::new(&SYMMETRIC_KEY);
        let mut rng = Rng::new(5);
        for _ in 0..100_000 {
            let a = Ipv4Address::from(rng.next_u32());
            let b = Ipv4Address::from(rng.next_u32());
            let (p, q) = (rng.next_u32() as u16, rng.next_u32() as u16);
            assert_eq!(t.hash_ipv4_tcp(a, b, p, q), t.hash_ipv4_tcp(b, a, q, p));
            assert_eq!(t.hash_ipv4(a, b), t.hash_ipv4(b, a));
        }
        // The Microsoft key is not: one counterexample is enough.
        let (a, b) = ("1.2.3.4".parse().unwrap(), "5.6.7.8".parse().unwrap());
        assert_ne!(
            hash_ipv4_tcp(&MICROSOFT_KEY, a, b, 1, 2),
            hash_ipv4_tcp(&MICROSOFT_KEY, b, a, 2, 1)
        );
    }

    #[test]
    fn symmetric_hash_spreads_over_queues() {
        let rss = Rss::symmetric(4);
        let mut counts = [0usize; 4];
        let mut rng = Rng::new(9);
        for _ in 0..40_000 {
            let q = rss.queue_for_reply(
                Ipv4Address::from(rng.next_u32()),
                rng.next_u32() as u16,
                Ipv4Address::from(rng.next_u32()),
                rng.next_u32() as u16,
            );
            counts[q] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn reta_round_robin_and_set() {
        let mut r = Reta::new(3);
        assert_eq!(r.queues(), 3);
        assert_eq!(r.queue_for(0), 0);
        assert_eq!(r.queue_for(4), 1);
        assert_eq!(r.queue_for(128 + 5), 2);
        assert!(r.set(5, 0));
        assert_eq!(r.queue_for(5), 0);
        assert!(!r.set(5, 3));
        assert!(!r.set(RETA_SIZE, 0));
        assert_eq!(Reta::new(0).queues(), 1);
        assert!(r.entries().iter().all(|&q| q < 3));
    }

    fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn flow_key_extraction() {
        let f = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80);
        let (a, b) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        assert_eq!(
            flow_key(&f),
            FlowKey::Ipv4Ports(FourTuple::of_received(a, 1234, b, 80))
        );
        assert_eq!(
            Rss::symmetric(8).hash_key(&flow_key(&f)),
            Toeplitz::new(&SYMMETRIC_KEY).hash_ipv4_tcp(a, b, 1234, 80)
        );
        // UDP too.
        let mut u = f.clone();
        u[14 + 9] = 17;
        assert!(matches!(flow_key(&u), FlowKey::Ipv4Ports { .. }));
        // ICMP: the pair.
        let mut i = f.clone();
        i[14 + 9] = 1;
        assert_eq!(flow_key(&i), FlowKey::Ipv4 { src: a, dst: b });
        // A fragment: the pair, its ports may not be there.
        let mut fr = f.clone();
        fr[14 + 6] = 0x20;
        assert_eq!(flow_key(&fr), FlowKey::Ipv4 { src: a, dst: b });
        // VLAN-tagged.
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        v.extend_from_slice(&f[12..]);
        assert_eq!(flow_key(&v), flow_key(&f));
        // An 802.1ad tag is skipped the same way; a tag cut short is not
        // IPv4.
        v[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(flow_key(&v), flow_key(&f));
        assert_eq!(flow_key(&v[..17]), FlowKey::NotIpv4);
        // ARP and garbage.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(flow_key(&arp), FlowKey::NotIpv4);
        assert_eq!(flow_key(&[]), FlowKey::NotIpv4);
        assert_eq!(flow_key(&f[..20]), FlowKey::Unhashable);
        let mut bad_ihl = f.clone();
        bad_ihl[14] = 0x44;
        assert_eq!(flow_key(&bad_ihl), FlowKey::Unhashable);
        // Ports cut off: the pair.
        assert_eq!(flow_key(&f[..36]), FlowKey::Ipv4 { src: a, dst: b });
    }

    #[test]
    fn flow_key_never_panics_on_random_bytes() {
        let mut rng = Rng::new(3);
        let mut buf = [0u8; 80];
        for _ in 0..50_000 {
            rng.fill(&mut buf);
            buf[12] = 0x08;
            buf[13] = if rng.chance(0.5) { 0x00 } else { 0x06 };
            buf[14] = 0x40 | (rng.next_u32() as u8 & 0x0f);
            let n = rng.range(0, 81) as usize;
            let _ = flow_key(&buf[..n]);
        }
    }

    #[test]
    fn steer_agrees_with_flow_key_hash() {
        let rss = Rss::symmetric(16);
        let mut rng = Rng::new(8);
        for _ in 0..20_000 {
            let mut f = tcp_frame(
                rng.next_u32().to_be_bytes(),
                rng.next_u32().to_be_bytes(),
                rng.next_u32() as u16,
                rng.next_u32() as u16,
            );
            f[14 + 9] = [6, 17, 1, 47][rng.range(0, 4) as usize];
            if rng.chance(0.1) {
                f[14 + 6] = 0x20;
            }
            let n = rng.range(10, f.len() as u64 + 1) as usize;
            let key = flow_key(&f[..n]);
            let want = match key {
                FlowKey::NotIpv4 => Steer::AllQueues,
                k => Steer::Queue(rss.reta().queue_for(rss.hash_key(&k))),
            };
            assert_eq!(rss.steer(&f[..n]), want, "{key:?}");
        }
    }

    #[test]
    fn steering_is_symmetric_and_arp_goes_everywhere() {
        let rss = Rss::symmetric(8);
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let (a, b): ([u8; 4], [u8; 4]) =
                (rng.next_u32().to_be_bytes(), rng.next_u32().to_be_bytes());
            let (p, q) = (rng.next_u32() as u16, rng.next_u32() as u16);
            assert_eq!(
                rss.steer(&tcp_frame(a, b, p, q)),
                rss.steer(&tcp_frame(b, a, q, p))
            );
        }
        let mut arp = tcp_frame([1; 4], [2; 4], 1, 2);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(rss.steer(&arp), Steer::AllQueues);
    }

    #[test]
    #[allow(clippy::reversed_empty_ranges)]
    fn ephemeral_port_lands_on_wanted_queue() {
        let rss = Rss::symmetric(4);
        let local = Ipv4Address::new(10, 0, 0, 1);
        let remote = Ipv4Address::new(10, 0, 0, 2);
        for queue in 0..4 {
            let port =
                ephemeral_port_for_queue(&rss, local, remote, 80, 49152..=65535, 50000, queue)
                    .unwrap();
            assert!((49152..=65535).contains(&port));
            assert!(port >= 50000, "search starts at `start`");
            assert_eq!(rss.queue_for_reply(local, port, remote, 80), queue);
            // The outgoing direction hashes the same (symmetric key).
            assert_eq!(
                rss.reta()
                    .queue_for(rss.hasher().hash_ipv4_tcp(local, remote, port, 80)),
                queue
            );
        }
        // Roughly a quarter of the range qualifies for each queue.
        let n = rss
            .ports_for_queue(local, remote, 80, 49152..=65535, 65535, 2)
            .count();
        assert!((3000..5200).contains(&n), "{n}");
        // Wrapping from the top of the range still yields in-range ports.
        let first = rss
            .ports_for_queue(local, remote, 80, 60000..=60010, 60010, 1)
            .collect::<Vec<_>>();
        assert!(first.iter().all(|p| (60000..=60010).contains(p)));
        // An impossible request: one queue of a single-queue table.
        assert_eq!(
            ephemeral_port_for_queue(&rss, local, remote, 80, 5..=4, 5, 0),
            None
        );
        assert_eq!(
            ephemeral_port_for_queue(&Rss::symmetric(1), local, remote, 80, 1000..=1000, 0, 1),
            None
        );
    }
}
