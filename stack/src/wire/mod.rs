//! Wire formats: checked zero-copy views and plain `Repr`s, one module per
//! protocol.
//!
//! Untrusted bytes go through a checked view (`XxxPacket::new_checked`), then
//! `XxxRepr::parse`; after `new_checked` succeeds no accessor panics. Field
//! offsets live in each module's `field` module and nowhere else.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ipv4;
mod seq;
pub mod tcp;
mod tuple;
pub mod udp;

pub use seq::SeqNumber;
pub use tuple::FourTuple;

use core::fmt;

/// Why a frame could not be parsed. Each variant is counted separately in the
/// per-core statistics, so a drop always says why it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than a header or a length field claims.
    Truncated,
    /// A checksum does not verify.
    BadChecksum,
    /// A field holds a value the protocol forbids (bad option length, IHL < 5, …).
    Malformed,
    /// Well formed, but not something this stack handles (IP options we do
    /// not parse are skipped, not unsupported; fragments are unsupported).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::BadChecksum => "bad checksum",
            Error::Malformed => "malformed",
            Error::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {}

/// The result of parsing or emitting wire data.
pub type Result<T> = core::result::Result<T, Error>;
