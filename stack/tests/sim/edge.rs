//! The peer's right edge, checked on every transmitted segment.
//!
//! A receiver offers the octets up to SEG.ACK + SEG.WND (RFC 9293 §3.8.6);
//! a sender must never send past the largest such edge the peer ever
//! advertised. Linux drops such segments as out of window, and a sender
//! whose SND.MAX lies beyond the edge also has its pure ACKs dropped: the
//! connection stalls for good (issue 10). [`EdgeCheck`] watches the frames
//! every stack hands to its device (before any fault), learns each side's
//! window shift from its SYN, tracks the largest edge each side advertised,
//! and records the first segment of the other side that ends beyond it.
//!
//! One sequence number past the edge is allowed when it is all the segment
//! carries: a one-octet zero-window probe (RFC 9293 §3.8.6.1, "at least one
//! octet of new data") or a lone FIN.

use std::collections::HashMap;

use mtcp_stack::wire::frame::parse_tcp_frame;
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::SeqNumber;

/// One direction of a connection: (source, source port, destination,
/// destination port).
type Dir = (Ipv4Address, u16, Ipv4Address, u16);

#[derive(Debug, Default, Clone, Copy)]
struct Side {
    /// This side's SYN: its ISS and the shift it offered (`None`: no
    /// window scale option).
    syn: Option<(SeqNumber, Option<u8>)>,
    /// The largest right edge this side advertised.
    edge: Option<SeqNumber>,
}

/// The checker shared by every delay line of one simulation.
#[derive(Debug, Default)]
pub struct EdgeCheck {
    sides: HashMap<Dir, Side>,
    /// Segments checked against a known edge.
    pub checked: u64,
    /// The first violation, with the segment that made it.
    pub violation: Option<String>,
}

fn reverse(d: Dir) -> Dir {
    (d.2, d.3, d.0, d.1)
}

impl EdgeCheck {
    /// Looks at one frame a stack transmitted.
    pub fn on_tx(&mut self, now_us: u64, frame: &[u8]) {
        let Ok((_, ip, seg)) = parse_tcp_frame(frame, false) else {
            return;
        };
        let dir: Dir = (ip.src_addr, seg.src_port, ip.dst_addr, seg.dst_port);
        if seg.flags.rst() {
            return;
        }
        if seg.flags.syn() {
            let known = self.sides.get(&dir).and_then(|s| s.syn).map(|(iss, _)| iss);
            if known != Some(seg.seq) {
                // A new incarnation of this 4-tuple (not a retransmitted
                // SYN): start from scratch.
                if !seg.flags.ack() {
                    self.sides.remove(&reverse(dir));
                }
                self.sides.insert(
                    dir,
                    Side {
                        syn: Some((seg.seq, seg.options.window_scale)),
                        edge: None,
                    },
                );
            }
        }
        // What this segment sends, against what the peer advertised.
        let len = seg.payload.len();
        let fin = usize::from(seg.flags.fin());
        if len + fin > 0 && !seg.flags.syn() {
            if let Some(edge) = self.sides.get(&reverse(dir)).and_then(|p| p.edge) {
                self.checked += 1;
                let end = seg.seq + len + fin;
                let ok = end <= edge || (end == edge + 1 && len + fin == 1);
                if !ok && self.violation.is_none() {
                    self.violation = Some(format!(
                        "{}.{:06}: {}:{} > {}:{} seq {} len {len} fin {fin} ends {} past the peer's largest right edge {}",
                        now_us / 1_000_000,
                        now_us % 1_000_000,
                        dir.0,
                        dir.1,
                        dir.2,
                        dir.3,
                        seg.seq,
                        end - edge,
                        edge,
                    ));
                }
            }
        }
        // What this segment advertises.
        if !seg.flags.ack() {
            return;
        }
        let peer_ws = self
            .sides
            .get(&reverse(dir))
            .and_then(|p| p.syn)
            .map(|(_, w)| w);
        let s = self.sides.entry(dir).or_default();
        let own_ws = s.syn.map(|(_, w)| w);
        let shift = match (own_ws, peer_ws) {
            // RFC 7323 §2.2: the window field of a SYN is never scaled.
            _ if seg.flags.syn() => 0,
            (Some(Some(ws)), Some(Some(_))) => ws.min(14),
            _ => 0,
        };
        let edge = seg.ack + (usize::from(seg.window) << shift);
        s.edge = Some(s.edge.map_or(edge, |e| e.max(edge)));
    }
}
