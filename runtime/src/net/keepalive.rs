//! [`TcpKeepalive`]: keepalive timing in socket2's builder shape.

use std::time::Duration;

use mtcp_stack::tcp::KeepaliveConfig;

/// Keepalive timing for [`TcpStream::set_tcp_keepalive`], in the shape of
/// socket2's `TcpKeepalive`: each value left unset keeps the stack's
/// default (`MTCP_KEEPALIVE`, else 7200 s idle, 75 s interval, 9 probes).
///
/// [`TcpStream::set_tcp_keepalive`]: super::TcpStream::set_tcp_keepalive
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let ka = mtcp::net::TcpKeepalive::new()
///     .with_time(Duration::from_secs(60))
///     .with_interval(Duration::from_secs(10))
///     .with_retries(3);
/// # let _ = ka;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    time: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

impl TcpKeepalive {
    /// Every value at the stack's default.
    pub const fn new() -> TcpKeepalive {
        TcpKeepalive {
            time: None,
            interval: None,
            retries: None,
        }
    }

    /// Idle time before the first probe (`TCP_KEEPIDLE`).
    pub const fn with_time(self, time: Duration) -> TcpKeepalive {
        TcpKeepalive {
            time: Some(time),
            ..self
        }
    }

    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    pub const fn with_interval(self, interval: Duration) -> TcpKeepalive {
        TcpKeepalive {
            interval: Some(interval),
            ..self
        }
    }

    /// Unanswered probes before the connection is reset (`TCP_KEEPCNT`).
    pub const fn with_retries(self, retries: u32) -> TcpKeepalive {
        TcpKeepalive {
            retries: Some(retries),
            ..self
        }
    }

    /// The engine's timing: `base` for what is unset. `None` for a zero
    /// time, interval or retry count, or more than 255 retries.
    pub(crate) fn resolve(&self, base: KeepaliveConfig) -> Option<KeepaliveConfig> {
        let k = KeepaliveConfig {
            idle: self.time.unwrap_or(base.idle),
            interval: self.interval.unwrap_or(base.interval),
            count: match self.retries {
                Some(n) => u8::try_from(n).ok()?,
                None => base.count,
            },
        };
        (!k.idle.is_zero() && !k.interval.is_zero() && k.count > 0).then_some(k)
    }

    /// The engine's timing as a `TcpKeepalive` with every value set.
    pub(crate) fn from_config(k: KeepaliveConfig) -> TcpKeepalive {
        TcpKeepalive::new()
            .with_time(k.idle)
            .with_interval(k.interval)
            .with_retries(u32::from(k.count))
    }

    /// Idle time, if set.
    pub fn time(&self) -> Option<Duration> {
        self.time
    }

    /// Probe interval, if set.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Probe count, if set.
    pub fn retries(&self) -> Option<u32> {
        self.retries
    }
}
