//! TCP segments and their options.
//!
//! The plain types below (`TcpRepr`, `TcpFlags`, `TcpOptions`, `SackBlock`)
//! are what the TCP engine consumes and produces; their shape is fixed.
//!
//! [`TcpPacket`] is the checked zero-copy view of a segment (the IPv4
//! payload); [`TcpRepr::parse`] verifies the checksum with the pseudo-header
//! and parses the options (RFC 9293 §3.2, RFC 7323, RFC 2018);
//! [`TcpRepr::emit`] writes them 4-byte aligned the way Linux lays them out.

use super::SeqNumber;

/// The TCP control bits (RFC 9293 §3.1), as a small bit set (a
/// [`bitflags`] type: `|`, `&`, `-`, `contains`, `insert`, `remove`, …).
/// The field is the byte as on the wire; bits outside the eight flags do
/// not exist in a byte, so every value is a valid set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

bitflags::bitflags! {
    impl TcpFlags: u8 {
        /// FIN: no more data from sender.
        const FIN = 0x01;
        /// SYN: synchronize sequence numbers.
        const SYN = 0x02;
        /// RST: reset the connection.
        const RST = 0x04;
        /// PSH: push function.
        const PSH = 0x08;
        /// ACK: the acknowledgment field is significant.
        const ACK = 0x10;
        /// URG: the urgent pointer is significant.
        const URG = 0x20;
        /// ECE: ECN echo.
        const ECE = 0x40;
        /// CWR: congestion window reduced.
        const CWR = 0x80;
    }
}

impl TcpFlags {
    /// No bits.
    pub const NONE: TcpFlags = TcpFlags::empty();

    /// `self` with the bits of `other` added.
    pub const fn with(self, other: TcpFlags) -> TcpFlags {
        self.union(other)
    }

    /// `self` with the bits of `other` removed.
    pub const fn without(self, other: TcpFlags) -> TcpFlags {
        self.difference(other)
    }

    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// RST is set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// PSH is set.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(TcpFlags, &str); 8] = [
            (TcpFlags::SYN, "S"),
            (TcpFlags::FIN, "F"),
            (TcpFlags::RST, "R"),
            (TcpFlags::PSH, "P"),
            (TcpFlags::ACK, "."),
            (TcpFlags::URG, "U"),
            (TcpFlags::ECE, "E"),
            (TcpFlags::CWR, "W"),
        ];
        let mut any = false;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                f.write_str(name)?;
                any = true;
            }
        }
        if !any {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// One SACK block (RFC 2018): the peer holds `[left, right)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNumber,
    /// Sequence number just past the block.
    pub right: SeqNumber,
}

/// The most SACK blocks a segment can carry (4 without timestamps, 3 with).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The TCP options this stack understands. Unknown options are skipped by
/// length on parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), SYN only.
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3), SYN only. Values above 14 are
    /// kept as received; the engine clamps them (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4), SYN only.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5); only the first `sack_len` entries are valid.
    pub sack_blocks: [SackBlock; MAX_SACK_BLOCKS],
    /// How many of `sack_blocks` are valid.
    pub sack_len: u8,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sack(&self) -> &[SackBlock] {
        &self.sack_blocks[..usize::from(self.sack_len).min(MAX_SACK_BLOCKS)]
    }

    /// Appends a SACK block; returns false when full.
    pub fn push_sack(&mut self, block: SackBlock) -> bool {
        let n = usize::from(self.sack_len);
        if n >= MAX_SACK_BLOCKS {
            return false;
        }
        self.sack_blocks[n] = block;
        self.sack_len += 1;
        true
    }
}

impl Default for SackBlock {
    fn default() -> SackBlock {
        SackBlock {
            left: SeqNumber(0),
            right: SeqNumber(0),
        }
    }
}

/// A parsed TCP segment header with a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK; meaningful only when `flags` has ACK (kept as received).
    pub ack: SeqNumber,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as on the wire (unscaled).
    pub window: u16,
    /// Urgent pointer (only meaningful with URG).
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
    /// Segment data.
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    /// SEG.LEN: payload length plus one for SYN and one for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }
}

use super::checksum;
use super::ipv4::{IpProtocol, Ipv4Address};
use super::{Error, Result};

mod field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const SEQ_NUM: Range<usize> = 4..8;
    pub(super) const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in the high nibble (the low bits are reserved / NS).
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WIN_SIZE: Range<usize> = 14..16;
    pub(super) const CHECKSUM: Range<usize> = 16..18;
    pub(super) const URGENT: Range<usize> = 18..20;
    pub(super) const OPTIONS_START: usize = 20;

    pub(super) const OPT_EOL: u8 = 0;
    pub(super) const OPT_NOP: u8 = 1;
    pub(super) const OPT_MSS: u8 = 2;
    pub(super) const OPT_WS: u8 = 3;
    pub(super) const OPT_SACK_PERM: u8 = 4;
    pub(super) const OPT_SACK: u8 = 5;
    pub(super) const OPT_TSTAMP: u8 = 8;

    pub(super) const LEN_MSS: usize = 4;
    pub(super) const LEN_WS: usize = 3;
    pub(super) const LEN_SACK_PERM: usize = 2;
    pub(super) const LEN_TSTAMP: usize = 10;
    pub(super) const SACK_BLOCK_LEN: usize = 8;
    /// NOP, NOP, then the timestamp's kind and length: RFC 7323 Appendix
    /// A's layout of a timestamp alone.
    pub(super) const TSTAMP_ALIGNED: [u8; 4] = [OPT_NOP, OPT_NOP, OPT_TSTAMP, LEN_TSTAMP as u8];
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS_START;
/// Where the checksum field ends: the bytes a checksum fix-up needs.
pub const CHECKSUM_END: usize = field::CHECKSUM.end;
/// The most option bytes a header can hold (data offset 15).
pub const MAX_OPTIONS_LEN: usize = 40;

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The source and destination ports at the start of a TCP or UDP header
/// (the two share the layout), from the first four bytes of `l4`; `None`
/// when fewer are there. For readers that need the ports only (RSS).
pub fn ports(l4: &[u8]) -> Option<(u16, u16)> {
    let src = l4.get(field::SRC_PORT)?;
    let dst = l4.get(field::DST_PORT)?;
    Some((be16(src), be16(dst)))
}

/// A checked zero-copy view of a TCP segment. The buffer is exactly the
/// segment (the IPv4 payload): the checksum covers all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer and checks the header length.
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header with its options fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes or than
    /// the data offset; [`Error::Malformed`] when the data offset is below 5.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// SEG.SEQ.
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(be32(&self.buffer.as_ref()[field::SEQ_NUM]))
    }

    /// SEG.ACK.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(be32(&self.buffer.as_ref()[field::ACK_NUM]))
    }

    /// The header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// SEG.WND as on the wire.
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The raw option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS_START..self.header_len()]
    }

    /// True when the checksum over the pseudo-header and the whole segment
    /// verifies.
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let ph = checksum::pseudo_header_v4(src, dst, u8::from(IpProtocol::Tcp), len);
        checksum::combine(&[ph, checksum::data(b)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The segment data after the header, borrowed for the buffer's lifetime.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets SEG.SEQ.
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&v.0.to_be_bytes());
    }

    /// Sets SEG.ACK.
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&v.0.to_be_bytes());
    }

    /// Sets the data offset from a header length in bytes (a multiple of 4)
    /// and clears the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Sets SEG.WND.
    pub fn set_window_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS_START..hl]
    }

    /// The data after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the full checksum over the pseudo-header and the
    /// whole buffer. Always inlined: in its emitter LLVM folds it into the
    /// header writes (measured: it was outlined otherwise, +50
    /// instructions per echo transaction).
    #[inline(always)]
    pub fn fill_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, u8::from(IpProtocol::Tcp), b.len() as u32);
        let ck = checksum::finish(checksum::combine(&[ph, checksum::data(b)]));
        self.set_checksum(ck);
    }

    /// Stores the pseudo-header sum (folded, not inverted) in the checksum
    /// field, which is what a NIC with TX checksum offload expects (Linux
    /// `CHECKSUM_PARTIAL`, DPDK `RTE_MBUF_F_TX_TCP_CKSUM` with
    /// `rte_ipv4_phdr_cksum`): the device adds the segment's sum and inverts.
    pub fn fill_partial_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        let len = self.buffer.as_ref().len() as u32;
        self.set_checksum(checksum::pseudo_header_v4(
            src,
            dst,
            u8::from(IpProtocol::Tcp),
            len,
        ));
    }
}

/// Parses the option bytes of a header (RFC 9293 §3.2).
///
/// EOL ends the list, NOP is skipped, MSS/WS/SACK-permitted/SACK/timestamps
/// must have their exact lengths, an unknown option with a length of at
/// least 2 that fits is skipped. A later duplicate overrides an earlier one.
/// More than [`MAX_SACK_BLOCKS`] SACK blocks cannot be encoded (the length
/// byte would exceed the option space), so a SACK option always fits.
///
/// # Errors
/// [`Error::Malformed`] on a bad length (below 2, past the end, or wrong
/// for a known kind).
pub fn parse_options(mut bytes: &[u8]) -> Result<TcpOptions> {
    let mut opts = TcpOptions::default();
    // RFC 7323 Appendix A's layout, which every segment of a connection
    // with timestamps carries after the handshake (and ours emit): two
    // NOPs, then the timestamp. Read without the general walk.
    if let Some((head, ts)) = bytes.split_first_chunk::<4>() {
        if *head == field::TSTAMP_ALIGNED && ts.len() == field::LEN_TSTAMP - 2 {
            opts.timestamp = Some((be32(&ts[0..4]), be32(&ts[4..8])));
            return Ok(opts);
        }
    }
    while let Some(&kind) = bytes.first() {
        match kind {
            field::OPT_EOL => break,
            field::OPT_NOP => {
                bytes = &bytes[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(*bytes.get(1).ok_or(Error::Malformed)?);
        if len < 2 || len > bytes.len() {
            return Err(Error::Malformed);
        }
        let data = &bytes[2..len];
        match kind {
            field::OPT_MSS => {
                if len != field::LEN_MSS {
                    return Err(Error::Malformed);
                }
                opts.mss = Some(be16(data));
            }
            field::OPT_WS => {
                if len != field::LEN_WS {
                    return Err(Error::Malformed);
                }
                opts.window_scale = Some(data[0]);
            }
            field::OPT_SACK_PERM => {
                if len != field::LEN_SACK_PERM {
                    return Err(Error::Malformed);
                }
                opts.sack_permitted = true;
            }
            field::OPT_SACK => {
                let n = data.len() / field::SACK_BLOCK_LEN;
                if data.len() % field::SACK_BLOCK_LEN != 0 || n == 0 || n > MAX_SACK_BLOCKS {
                    return Err(Error::Malformed);
                }
                opts.sack_len = 0;
                opts.sack_blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
                for b in data.chunks_exact(field::SACK_BLOCK_LEN) {
                    opts.push_sack(SackBlock {
                        left: SeqNumber(be32(&b[0..4])),
                        right: SeqNumber(be32(&b[4..8])),
                    });
                }
            }
            field::OPT_TSTAMP => {
                if len != field::LEN_TSTAMP {
                    return Err(Error::Malformed);
                }
                opts.timestamp = Some((be32(&data[0..4]), be32(&data[4..8])));
            }
            _ => {}
        }
        bytes = &bytes[len..];
    }
    Ok(opts)
}

/// How many SACK blocks of `opts` fit in the option space next to its other
/// options.
fn sack_blocks_that_fit(opts: &TcpOptions) -> usize {
    let n = opts.sack().len();
    if n == 0 {
        return 0;
    }
    let room = MAX_OPTIONS_LEN - fixed_options_len(opts);
    // NOP, NOP, kind, len, then 8 bytes per block.
    n.min(room.saturating_sub(4) / field::SACK_BLOCK_LEN)
}

/// The length of every option but SACK blocks, as laid out by
/// [`emit_options`]: all entries are multiples of 4.
fn fixed_options_len(opts: &TcpOptions) -> usize {
    let mut len = 0;
    if opts.mss.is_some() {
        len += 4;
    }
    if opts.timestamp.is_some() {
        // SACK_PERM + TS, or NOP NOP TS.
        len += 12;
    } else if opts.sack_permitted {
        // NOP NOP SACK_PERM.
        len += 4;
    }
    if opts.window_scale.is_some() {
        // NOP WS.
        len += 4;
    }
    len
}

/// The number of option bytes [`emit_options`] writes for `opts`: always a
/// multiple of 4 and at most 40.
pub fn options_len(opts: &TcpOptions) -> usize {
    let n = sack_blocks_that_fit(opts);
    fixed_options_len(opts)
        + if n > 0 {
            4 + n * field::SACK_BLOCK_LEN
        } else {
            0
        }
}

/// Writes `opts` the way Linux lays them out (`tcp_options_write`): MSS
/// first; SACK-permitted + timestamps packed as `4,2,8,10,...`, else
/// `NOP,NOP,TS` or `NOP,NOP,SACK_PERM`; `NOP,WS`; then `NOP,NOP,SACK` with
/// as many blocks as fit. Every piece is 4-byte aligned, so no padding is
/// needed. Returns the number of bytes written ([`options_len`]).
///
/// # Panics
/// Panics when `buf` is shorter than [`options_len`].
pub fn emit_options(opts: &TcpOptions, buf: &mut [u8]) -> usize {
    let mut i = 0;
    let mut put = |bytes: &[u8]| {
        buf[i..i + bytes.len()].copy_from_slice(bytes);
        i += bytes.len();
    };
    if let Some(mss) = opts.mss {
        let m = mss.to_be_bytes();
        put(&[field::OPT_MSS, field::LEN_MSS as u8, m[0], m[1]]);
    }
    if let Some((val, ecr)) = opts.timestamp {
        if opts.sack_permitted {
            put(&[field::OPT_SACK_PERM, field::LEN_SACK_PERM as u8]);
            put(&[field::OPT_TSTAMP, field::LEN_TSTAMP as u8]);
        } else {
            put(&field::TSTAMP_ALIGNED);
        }
        put(&val.to_be_bytes());
        put(&ecr.to_be_bytes());
    } else if opts.sack_permitted {
        put(&[
            field::OPT_NOP,
            field::OPT_NOP,
            field::OPT_SACK_PERM,
            field::LEN_SACK_PERM as u8,
        ]);
    }
    if let Some(ws) = opts.window_scale {
        put(&[field::OPT_NOP, field::OPT_WS, field::LEN_WS as u8, ws]);
    }
    let n = sack_blocks_that_fit(opts);
    if n > 0 {
        put(&[
            field::OPT_NOP,
            field::OPT_NOP,
            field::OPT_SACK,
            (2 + n * field::SACK_BLOCK_LEN) as u8,
        ]);
        for b in &opts.sack()[..n] {
            put(&b.left.0.to_be_bytes());
            put(&b.right.0.to_be_bytes());
        }
    }
    i
}

impl<'a> TcpRepr<'a> {
    /// Parses a segment. `src` and `dst` are the IPv4 addresses for the
    /// pseudo-header; with `verify_checksum` false (RX offload) the checksum
    /// is not checked.
    ///
    /// # Errors
    /// [`Error::Truncated`] / [`Error::Malformed`] as in
    /// [`TcpPacket::check_len`]; [`Error::BadChecksum`]; [`Error::Malformed`]
    /// for bad options (see [`parse_options`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options: parse_options(packet.options())?,
            payload: packet.payload(),
        })
    }

    /// The option bytes this repr emits (see [`emit_options`]).
    pub fn options_len(&self) -> usize {
        options_len(&self.options)
    }

    /// The header length with options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// The segment length: header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into a buffer of exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    ///
    /// With `fill_checksum` the full checksum is computed. Without it, for a
    /// device with TX checksum offload, the field holds the pseudo-header
    /// sum (see [`TcpPacket::fill_partial_checksum`]) and the device
    /// completes it.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        fill_checksum: bool,
    ) {
        let hl = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack);
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window);
        packet.set_urgent_at(self.urgent);
        emit_options(&self.options, packet.options_mut());
        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        if fill_checksum {
            packet.fill_checksum(src, dst);
        } else {
            packet.fill_partial_checksum(src, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    fn sack(l: u32, r: u32) -> SackBlock {
        SackBlock {
            left: SeqNumber(l),
            right: SeqNumber(r),
        }
    }

    fn base(payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 49152,
            dst_port: 80,
            seq: SeqNumber(0x0102_0304),
            ack: SeqNumber(0x0a0b_0c0d),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 0xfff0,
            urgent: 0,
            options: TcpOptions::default(),
            payload,
        }
    }

    fn emit_vec(r: &TcpRepr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST, true);
        buf
    }

    fn round_trip(r: &TcpRepr<'_>) {
        let buf = emit_vec(r);
        assert_eq!(buf.len() % 4, r.payload.len() % 4);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(TcpRepr::parse(&p, SRC, DST, true).unwrap(), *r);
    }

    #[test]
    fn plain_round_trip_and_bytes() {
        let r = base(b"hello");
        let buf = emit_vec(&r);
        assert_eq!(
            &buf[..20],
            &[
                0xc0, 0x00, 0x00, 80, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18, 0xff, 0xf0,
                buf[16], buf[17], 0, 0
            ]
        );
        assert_eq!(&buf[20..], b"hello");
        round_trip(&r);
    }

    #[test]
    fn each_option_round_trips() {
        let mut cases = Vec::new();
        let d = TcpOptions::default();
        cases.push(TcpOptions {
            mss: Some(1460),
            ..d
        });
        cases.push(TcpOptions {
            window_scale: Some(7),
            ..d
        });
        cases.push(TcpOptions {
            sack_permitted: true,
            ..d
        });
        cases.push(TcpOptions {
            timestamp: Some((0xdead_beef, 0x0102_0304)),
            ..d
        });
        for n in 1..=4 {
            let mut o = TcpOptions::default();
            for k in 0..n {
                o.push_sack(sack(1000 * k, 1000 * k + 500));
            }
            cases.push(o);
        }
        for o in cases {
            let mut r = base(b"x");
            r.options = o;
            round_trip(&r);
        }
    }

    #[test]
    fn all_combinations_round_trip() {
        // Every subset of {MSS, WS, SACK-perm, TS} with 0..=4 SACK blocks;
        // blocks beyond what fits are dropped on emit.
        for mask in 0..16u8 {
            for n in 0..=4u32 {
                let mut o = TcpOptions::default();
                if mask & 1 != 0 {
                    o.mss = Some(536);
                }
                if mask & 2 != 0 {
                    o.window_scale = Some(14);
                }
                if mask & 4 != 0 {
                    o.sack_permitted = true;
                }
                if mask & 8 != 0 {
                    o.timestamp = Some((1, 2));
                }
                for k in 0..n {
                    o.push_sack(sack(k * 10, k * 10 + 5));
                }
                let mut r = base(&[]);
                r.flags = TcpFlags::SYN | TcpFlags::ACK;
                r.options = o;
                assert!(r.options_len() <= MAX_OPTIONS_LEN);
                assert_eq!(r.options_len() % 4, 0);
                let buf = emit_vec(&r);
                let p = TcpPacket::new_checked(&buf[..]).unwrap();
                let parsed = TcpRepr::parse(&p, SRC, DST, true).unwrap();
                let fit = sack_blocks_that_fit(&o);
                assert_eq!(usize::from(parsed.options.sack_len), fit);
                assert_eq!(parsed.options.sack(), &o.sack()[..fit]);
                assert_eq!(parsed.options.mss, o.mss);
                assert_eq!(parsed.options.window_scale, o.window_scale);
                assert_eq!(parsed.options.sack_permitted, o.sack_permitted);
                assert_eq!(parsed.options.timestamp, o.timestamp);
                if fit == usize::from(o.sack_len) {
                    assert_eq!(parsed, r);
                }
            }
        }
    }

    #[test]
    fn timestamps_leave_room_for_three_sack_blocks() {
        let mut o = TcpOptions {
            timestamp: Some((5, 6)),
            ..TcpOptions::default()
        };
        for k in 0..4 {
            o.push_sack(sack(k, k + 1));
        }
        assert_eq!(sack_blocks_that_fit(&o), 3);
        assert_eq!(options_len(&o), 12 + 4 + 24);
        o.timestamp = None;
        assert_eq!(sack_blocks_that_fit(&o), 4);
        assert_eq!(options_len(&o), 36);
    }

    #[test]
    fn linux_layout_syn() {
        let mut r = base(&[]);
        r.flags = TcpFlags::SYN;
        r.options.mss = Some(1460);
        r.options.sack_permitted = true;
        r.options.timestamp = Some((0x11223344, 0));
        r.options.window_scale = Some(7);
        let buf = emit_vec(&r);
        assert_eq!(buf[12] >> 4, 10);
        assert_eq!(
            &buf[20..40],
            &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 1, 3, 3, 7]
        );
    }

    #[test]
    fn linux_layout_ts_and_sack() {
        let mut r = base(&[]);
        r.options.timestamp = Some((1, 2));
        r.options.push_sack(sack(100, 200));
        let buf = emit_vec(&r);
        assert_eq!(&buf[20..24], &[1, 1, 8, 10]);
        assert_eq!(&buf[32..36], &[1, 1, 5, 10]);
        assert_eq!(&buf[36..44], &[0, 0, 0, 100, 0, 0, 0, 200]);
        let mut r = base(&[]);
        r.options.sack_permitted = true;
        let buf = emit_vec(&r);
        assert_eq!(&buf[20..24], &[1, 1, 4, 2]);
    }

    #[test]
    fn parse_options_rules() {
        // EOL ends the list even if garbage follows.
        let o = parse_options(&[2, 4, 1, 0, 0, 99, 99, 99]).unwrap();
        assert_eq!(o.mss, Some(256));
        // NOPs are skipped.
        let o = parse_options(&[1, 1, 1, 3, 3, 9, 1, 1]).unwrap();
        assert_eq!(o.window_scale, Some(9));
        // Unknown kinds with a good length are skipped.
        let o = parse_options(&[30, 4, 0xaa, 0xbb, 4, 2, 1, 0]).unwrap();
        assert!(o.sack_permitted);
        // An empty list.
        assert_eq!(parse_options(&[]).unwrap(), TcpOptions::default());
        // Window scale above 14 is kept as received.
        assert_eq!(
            parse_options(&[3, 3, 200, 0]).unwrap().window_scale,
            Some(200)
        );
    }

    #[test]
    fn aligned_timestamp_reads_as_the_general_walk() {
        let ts = [1, 1, 8, 10, 0, 0, 0, 7, 0xff, 0, 0, 9];
        let o = parse_options(&ts).unwrap();
        assert_eq!(o.timestamp, Some((7, 0xff00_0009)));
        assert_eq!(
            o,
            TcpOptions {
                timestamp: o.timestamp,
                ..TcpOptions::default()
            }
        );
        // Four more bytes take the general walk: the same options, plus
        // what follows.
        let mut longer = ts.to_vec();
        longer.extend_from_slice(&[1, 3, 3, 7]);
        let l = parse_options(&longer).unwrap();
        assert_eq!(l.timestamp, o.timestamp);
        assert_eq!(l.window_scale, Some(7));
        // The layout's head with a short timestamp is still malformed.
        assert_eq!(parse_options(&ts[..11]).unwrap_err(), Error::Malformed);
        assert_eq!(
            parse_options(&[1, 1, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
            Error::Malformed
        );
        // What we emit for a timestamp alone is that layout.
        let mut buf = [0u8; 12];
        let emitted = TcpOptions {
            timestamp: Some((7, 0xff00_0009)),
            ..TcpOptions::default()
        };
        assert_eq!(emit_options(&emitted, &mut buf), 12);
        assert_eq!(buf, ts);
    }

    #[test]
    fn bad_option_lengths_malformed() {
        let bad: &[&[u8]] = &[
            &[2, 3, 5, 0],                          // MSS len 3
            &[2, 5, 5, 0, 0, 0, 0, 0],              // MSS len 5
            &[3, 2, 0, 0],                          // WS len 2
            &[3, 4, 0, 0],                          // WS len 4
            &[4, 3, 0, 0],                          // SACK-perm len 3
            &[8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // TS len 9
            &[8, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // TS len 11
            &[5, 2, 0, 0],                          // SACK without blocks
            &[5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // SACK len 9
            &[30, 1, 0, 0],                         // unknown len 1
            &[30, 0, 0, 0],                         // unknown len 0
            &[30, 8, 0, 0],                         // unknown past the end
            &[1, 1, 1, 2],                          // kind without length byte
            &[2, 4, 0],                             // MSS past the end
        ];
        for b in bad {
            assert_eq!(parse_options(b).unwrap_err(), Error::Malformed, "{b:?}");
        }
        // SACK with 5 blocks: length 42 cannot fit in 40 bytes of options,
        // but a raw slice could carry it; still malformed.
        let mut five = [0u8; 42];
        five[0] = 5;
        five[1] = 42;
        assert_eq!(parse_options(&five).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn bad_option_in_segment_malformed() {
        let mut r = base(&[]);
        r.options.mss = Some(1000);
        let mut buf = emit_vec(&r);
        buf[21] = 5; // MSS length 5
        TcpPacket::new_unchecked(&mut buf[..]).fill_checksum(SRC, DST);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, SRC, DST, true).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn data_offset_below_five_malformed() {
        let buf = emit_vec(&base(b"abc"));
        for off in 0..5u8 {
            let mut b = buf.clone();
            b[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&b[..]).unwrap_err(),
                Error::Malformed
            );
        }
    }

    #[test]
    fn data_offset_beyond_buffer_truncated() {
        let mut b = emit_vec(&base(&[]));
        b[12] = 6 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn truncated_at_every_field_boundary() {
        let mut r = base(&[]);
        r.options.timestamp = Some((1, 2));
        let buf = emit_vec(&r);
        for len in 0..buf.len() {
            let p = TcpPacket::new_unchecked(&buf[..len]);
            assert_eq!(
                TcpRepr::parse(&p, SRC, DST, false).unwrap_err(),
                Error::Truncated,
                "{len}"
            );
        }
    }

    #[test]
    fn bad_checksum_detected_and_skippable() {
        let mut buf = emit_vec(&base(b"payload"));
        buf[25] ^= 0x10;
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, SRC, DST, true).unwrap_err(),
            Error::BadChecksum
        );
        assert!(TcpRepr::parse(&p, SRC, DST, false).is_ok());
        // The pseudo-header counts: other addresses fail.
        let buf = emit_vec(&base(b"payload"));
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, SRC, Ipv4Address::new(10, 0, 0, 3), true).unwrap_err(),
            Error::BadChecksum
        );
    }

    #[test]
    fn partial_checksum_for_offload() {
        let r = base(b"0123456789");
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST, false);
        let p = TcpPacket::new_unchecked(&buf[..]);
        let ph = checksum::pseudo_header_v4(SRC, DST, 6, buf.len() as u32);
        assert_eq!(p.checksum(), ph);
        // What the NIC does: sum the segment (with the partial in place),
        // invert and store. The result verifies.
        let mut field0 = buf.clone();
        field0[16..18].copy_from_slice(&[0, 0]);
        let ck = checksum::finish(checksum::combine(&[ph, checksum::data(&field0)]));
        assert_eq!(checksum::finish(checksum::data(&buf)), ck);
        buf[16..18].copy_from_slice(&ck.to_be_bytes());
        assert!(TcpPacket::new_unchecked(&buf[..]).verify_checksum(SRC, DST));
    }

    #[test]
    fn flags_and_segment_len() {
        let mut r = base(b"ab");
        r.flags = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::URG | TcpFlags::ECE | TcpFlags::CWR;
        r.urgent = 7;
        round_trip(&r);
        assert_eq!(r.segment_len(), 4);
        assert_eq!(format!("{:?}", r.flags), "SFUEW");
    }

    #[test]
    fn duplicate_sack_option_replaces() {
        let o =
            parse_options(&[5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4]).unwrap();
        assert_eq!(o.sack(), &[sack(3, 4)]);
    }
}
