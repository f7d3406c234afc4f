//! Fuzzer-built TCP segments, with sequence and acknowledgment numbers
//! chosen relative to what the stack under test last sent, so that inputs
//! get past the acceptability tests into the state machine.

use arbitrary::Arbitrary;
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpRepr};
use mtcp_stack::wire::SeqNumber;

/// The stack's address in every harness.
pub const LOCAL: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
/// The fuzzer's (peer's) address.
pub const REMOTE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
/// A second remote host (same subnet).
pub const OTHER: Ipv4Address = Ipv4Address::new(10, 0, 0, 3);
/// The listening port.
pub const LISTEN_PORT: u16 = 80;
/// Peer ports are `PEER_PORT + 0..PEERS`.
pub const PEER_PORT: u16 = 40000;
/// Distinct peer connections the model tracks.
pub const PEERS: usize = 4;
/// The largest payload a fuzzer segment carries.
pub const MAX_PAYLOAD: usize = 3000;

/// What the stack last sent to one peer port.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerView {
    /// The stack's local port for this flow.
    pub local_port: Option<u16>,
    /// Highest SEG.SEQ + SEG.LEN the stack sent (its SND.NXT as seen).
    pub our_nxt: Option<SeqNumber>,
    /// Lowest sequence number the stack sent and we never acked (a guess
    /// at SND.UNA: the first seq seen).
    pub our_first: Option<SeqNumber>,
    /// The last ACK number the stack sent (its RCV.NXT as seen).
    pub their_nxt: Option<SeqNumber>,
    /// The stack's last TSval (for the peer's TSecr).
    pub ts_val: Option<u32>,
}

/// Every peer port's view.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Indexed by `port - PEER_PORT`.
    pub peers: [PeerView; PEERS],
}

impl Tracker {
    /// Learns from one segment the stack emitted.
    pub fn observe(&mut self, dst: Ipv4Address, seg: &TcpRepr<'_>) {
        if dst != REMOTE {
            return;
        }
        let Some(i) = seg.dst_port.checked_sub(PEER_PORT).map(usize::from) else {
            return;
        };
        let Some(p) = self.peers.get_mut(i) else {
            return;
        };
        p.local_port = Some(seg.src_port);
        let end = seg.seq + seg.segment_len();
        if seg.flags.syn() || p.our_first.is_none() {
            p.our_first = Some(seg.seq);
            p.our_nxt = Some(end);
        }
        p.our_nxt = Some(match p.our_nxt {
            Some(n) if n > end => n,
            _ => end,
        });
        if seg.flags.rst() {
            *p = PeerView::default();
            return;
        }
        if seg.flags.ack() {
            p.their_nxt = Some(seg.ack);
        }
        if let Some((val, _)) = seg.options.timestamp {
            p.ts_val = Some(val);
        }
    }
}

/// A sequence or acknowledgment number, relative to the model.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Rel {
    /// Exactly the expected value.
    Exact,
    /// The expected value plus a small signed offset.
    Near(i16),
    /// The expected value plus a large signed offset (window edges, wrap).
    Far(i32),
    /// An absolute value.
    Abs(u32),
}

impl Rel {
    /// The number, given the model's expected value (if known).
    pub fn apply(self, base: Option<SeqNumber>) -> SeqNumber {
        let b = base.unwrap_or(SeqNumber(0x1000_0000)).0;
        SeqNumber(match self {
            Rel::Exact => b,
            Rel::Near(d) => b.wrapping_add(d as u32),
            Rel::Far(d) => b.wrapping_add(d as u32),
            Rel::Abs(v) => v,
        })
    }
}

/// Which ports the segment uses.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Ports {
    /// From peer port `n % PEERS` to the flow's local port (the listener
    /// when the stack never answered).
    Peer(u8),
    /// Anything.
    Raw(u16, u16),
}

/// A timestamp option: TSval, and TSecr either echoing the stack's last
/// TSval or given.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct TsSpec {
    /// TSval.
    pub val: u32,
    /// Echo the stack's TSval.
    pub echo: bool,
    /// TSecr when not echoing.
    pub ecr: u32,
}

/// A segment as the fuzzer describes it.
#[derive(Arbitrary, Debug, Clone)]
pub struct SegSpec {
    /// Ports.
    pub ports: Ports,
    /// Control bits (all eight).
    pub flags: u8,
    /// SEG.SEQ relative to the stack's last ACK.
    pub seq: Rel,
    /// SEG.ACK relative to the stack's SND.NXT.
    pub ack: Rel,
    /// Relative to the first unacknowledged byte instead of SND.NXT.
    pub ack_from_una: bool,
    /// SEG.WND.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Timestamps.
    pub timestamp: Option<TsSpec>,
    /// SACK blocks: (left relative to SND.NXT, length).
    pub sack: Vec<(i32, u16)>,
    /// Payload length (taken modulo [`MAX_PAYLOAD`] + 1).
    pub len: u16,
}

/// Payload bytes for fuzzer segments: a fixed pattern.
pub static PAYLOAD: [u8; MAX_PAYLOAD] = {
    let mut p = [0u8; MAX_PAYLOAD];
    let mut i = 0;
    while i < MAX_PAYLOAD {
        p[i] = (i % 251) as u8;
        i += 1;
    }
    p
};

impl SegSpec {
    /// The segment, with numbers resolved against `tracker`.
    pub fn build(&self, tracker: &Tracker) -> TcpRepr<'static> {
        let (src_port, dst_port, view) = match self.ports {
            Ports::Peer(n) => {
                let i = usize::from(n) % PEERS;
                let v = tracker.peers[i];
                (PEER_PORT + i as u16, v.local_port.unwrap_or(LISTEN_PORT), v)
            }
            Ports::Raw(s, d) => {
                let v = s
                    .checked_sub(PEER_PORT)
                    .and_then(|i| tracker.peers.get(usize::from(i)).copied())
                    .unwrap_or_default();
                (s, d, v)
            }
        };
        let ack_base = if self.ack_from_una {
            view.our_first.map(|s| s + 1)
        } else {
            view.our_nxt
        };
        let mut options = TcpOptions {
            mss: self.mss,
            window_scale: self.wscale,
            sack_permitted: self.sack_permitted,
            timestamp: self.timestamp.map(|t| {
                let ecr = if t.echo {
                    view.ts_val.unwrap_or(t.ecr)
                } else {
                    t.ecr
                };
                (t.val, ecr)
            }),
            ..TcpOptions::default()
        };
        let nxt = view.our_nxt.unwrap_or(SeqNumber(0));
        for &(left, n) in self.sack.iter().take(4) {
            let l = SeqNumber(nxt.0.wrapping_add(left as u32));
            options.push_sack(SackBlock {
                left: l,
                right: l + usize::from(n),
            });
        }
        let len = usize::from(self.len) % (MAX_PAYLOAD + 1);
        TcpRepr {
            src_port,
            dst_port,
            seq: self.seq.apply(view.their_nxt),
            ack: self.ack.apply(ack_base),
            flags: TcpFlags(self.flags),
            window: self.window,
            urgent: self.urgent,
            options,
            payload: &PAYLOAD[..len],
        }
    }
}

/// Bytes at the front of every structured input, read for the settings.
pub const HEADER_LEN: usize = 16;
/// The most records one input runs.
pub const MAX_RECORDS: usize = 128;

/// Splits an input into its header and its records.
///
/// Layout: [`HEADER_LEN`] header bytes, then records of one tag byte, a
/// little-endian `u16` length and that many bytes (clamped to what is
/// left). Tag 0 carries raw wire bytes (a frame or a segment, so seeds are
/// real packets made by the stack's own `emit`); tag 1 carries bytes that
/// `arbitrary` turns into structured steps. Other tags are taken modulo 2.
pub fn split(data: &[u8]) -> ([u8; HEADER_LEN], Records<'_>) {
    let mut header = [0u8; HEADER_LEN];
    let n = data.len().min(HEADER_LEN);
    header[..n].copy_from_slice(&data[..n]);
    (
        header,
        Records {
            rest: &data[n..],
            count: 0,
        },
    )
}

/// Iterator over the records of an input (see [`split`]).
#[derive(Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
    count: usize,
}

/// One record.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// Raw wire bytes.
    Raw(&'a [u8]),
    /// Bytes for `arbitrary`.
    Structured(&'a [u8]),
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.rest.is_empty() || self.count >= MAX_RECORDS {
            return None;
        }
        self.count += 1;
        let tag = self.rest[0];
        let len = match self.rest.get(1..3) {
            Some(l) => usize::from(u16::from_le_bytes([l[0], l[1]])),
            None => 0,
        };
        let body_start = self.rest.len().min(3);
        let end = (body_start + len).min(self.rest.len());
        let body = &self.rest[body_start..end];
        self.rest = &self.rest[end..];
        Some(if tag & 1 == 0 {
            Record::Raw(body)
        } else {
            Record::Structured(body)
        })
    }
}

/// Encodes an input from a header and records (for seeds).
pub fn encode(header: [u8; HEADER_LEN], records: &[Record<'_>]) -> Vec<u8> {
    let mut v = header.to_vec();
    for r in records {
        let (tag, body) = match r {
            Record::Raw(b) => (0u8, b),
            Record::Structured(b) => (1u8, b),
        };
        v.push(tag);
        let len = u16::try_from(body.len()).expect("record under 64 KiB");
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
    }
    v
}
