//! The one mapping of the stack's socket errors to `std::io::Error`.
//!
//! The kinds come from the stack, next to each error enum
//! ([`TcpError::kind`], [`UdpError::kind`]), so TCP and UDP agree: a socket
//! that is gone is `NotConnected`, a full table is `OutOfMemory`, and so on.
//! How the error prints differs on purpose:
//!
//! * TCP errors with a plain std kind (refused, reset, timed out, …) are
//!   that kind alone, so they print as std's (`connection refused`); the
//!   others keep the stack's words (`From<TcpError> for io::Error`).
//! * UDP errors keep the stack's words (`connection refused (ICMP port
//!   unreachable)`), with the kind.

use std::io;

use mtcp_stack::tcp::TcpError;
use mtcp_stack::udp::UdpError;

/// A TCP socket error as an `io::Error`.
pub(crate) fn tcp(e: TcpError) -> io::Error {
    io::Error::from(e)
}

/// A UDP socket error as an `io::Error`.
pub(crate) fn udp(e: UdpError) -> io::Error {
    io::Error::new(e.kind(), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use io::ErrorKind as K;

    #[test]
    fn errors_map_to_the_usual_kinds() {
        let cases = [
            (TcpError::WouldBlock, K::WouldBlock),
            (TcpError::ConnectionRefused, K::ConnectionRefused),
            (TcpError::ConnectionReset, K::ConnectionReset),
            (TcpError::TimedOut, K::TimedOut),
            (TcpError::AddrInUse, K::AddrInUse),
            (TcpError::AddrNotAvailable, K::AddrNotAvailable),
            (TcpError::BrokenPipe, K::BrokenPipe),
            (TcpError::NotConnected, K::NotConnected),
            (TcpError::InvalidSocket, K::NotConnected),
            (TcpError::InvalidInput, K::InvalidInput),
            (TcpError::NoResources, K::OutOfMemory),
            (TcpError::HostUnreachable, K::HostUnreachable),
            (TcpError::NetworkUnreachable, K::NetworkUnreachable),
        ];
        for (e, k) in cases {
            assert_eq!(tcp(e).kind(), k, "{e}");
            assert_eq!(e.kind(), k, "{e}");
        }
    }

    #[test]
    fn tcp_and_udp_agree_on_shared_errors() {
        let pairs = [
            (TcpError::WouldBlock, UdpError::WouldBlock),
            (TcpError::ConnectionRefused, UdpError::ConnectionRefused),
            (TcpError::AddrInUse, UdpError::AddrInUse),
            (TcpError::AddrNotAvailable, UdpError::AddrNotAvailable),
            (TcpError::NotConnected, UdpError::NotConnected),
            (TcpError::InvalidSocket, UdpError::InvalidSocket),
            (TcpError::NoResources, UdpError::NoResources),
            (TcpError::HostUnreachable, UdpError::HostUnreachable),
            (TcpError::NetworkUnreachable, UdpError::NetworkUnreachable),
        ];
        for (t, u) in pairs {
            assert_eq!(tcp(t).kind(), udp(u).kind(), "{t} / {u}");
        }
    }

    #[test]
    fn connect_errors_print_like_std() {
        for (e, k) in [
            (TcpError::ConnectionRefused, K::ConnectionRefused),
            (TcpError::ConnectionReset, K::ConnectionReset),
            (TcpError::TimedOut, K::TimedOut),
            (TcpError::BrokenPipe, K::BrokenPipe),
        ] {
            let got = tcp(e);
            let std = io::Error::from(k);
            assert_eq!(got.to_string(), std.to_string());
            assert_eq!(format!("{got:?}"), format!("{std:?}"));
            assert!(!format!("{got:?}").contains("Custom"), "{got:?}");
        }
        assert_eq!(
            tcp(TcpError::ConnectionRefused).to_string(),
            "connection refused"
        );
        // The stack's own words where no std kind says more.
        assert_eq!(tcp(TcpError::NoResources).to_string(), "no resources left");
        assert_eq!(
            udp(UdpError::NoResources).to_string(),
            "UDP socket table full"
        );
    }
}
