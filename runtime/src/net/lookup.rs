//! [`lookup_host`]: name resolution, as `tokio::net::lookup_host`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

mod sealed {
    /// What a lookup resolves: addresses already, or a name to resolve on
    /// a blocking thread.
    #[derive(Debug)]
    pub enum Target {
        Addrs(Vec<std::net::SocketAddr>),
        Name(String),
        NamePort(String, u16),
    }

    pub trait Sealed {
        fn target(&self) -> Target;
    }
}

use sealed::Target;

/// Types [`lookup_host`] accepts, as tokio's `ToSocketAddrs`: socket
/// addresses, `(ip, port)` pairs, `"host:port"` strings and `(host, port)`
/// pairs. Sealed: implemented for these types only.
///
/// Every such type is also a [`std::net::ToSocketAddrs`], which
/// [`TcpStream::connect`](super::TcpStream::connect) and
/// [`TcpListener::bind`](super::TcpListener::bind) take: generic tokio code
/// bounded by `ToSocketAddrs` ports unchanged.
pub trait ToSocketAddrs: sealed::Sealed + std::net::ToSocketAddrs {}

macro_rules! addrs {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn target(&self) -> Target {
                Target::Addrs(vec![SocketAddr::from(*self)])
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

addrs!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for &[SocketAddr] {
    fn target(&self) -> Target {
        Target::Addrs(self.to_vec())
    }
}
impl ToSocketAddrs for &[SocketAddr] {}

impl sealed::Sealed for str {
    fn target(&self) -> Target {
        match self.parse::<SocketAddr>() {
            Ok(a) => Target::Addrs(vec![a]),
            Err(_) => Target::Name(self.to_owned()),
        }
    }
}
impl ToSocketAddrs for str {}

impl sealed::Sealed for String {
    fn target(&self) -> Target {
        self.as_str().target()
    }
}
impl ToSocketAddrs for String {}

impl sealed::Sealed for (&str, u16) {
    fn target(&self) -> Target {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Target::Addrs(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Target::NamePort(self.0.to_owned(), self.1),
        }
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl sealed::Sealed for (String, u16) {
    fn target(&self) -> Target {
        (self.0.as_str(), self.1).target()
    }
}
impl ToSocketAddrs for (String, u16) {}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn target(&self) -> Target {
        (**self).target()
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

/// Resolves `host` to socket addresses, as tokio's `lookup_host`.
///
/// Addresses and numeric strings resolve at once; a host name is resolved
/// by the system resolver (`getaddrinfo`) on a
/// [blocking thread](crate::task::spawn_blocking), so the core keeps
/// running. IPv6 results are returned as well, though the stack connects
/// over IPv4 only.
///
/// # Errors
/// The resolver's error (`"host:port"` without a port, an unknown name).
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let addrs: Vec<_> = mtcp::net::lookup_host("localhost:8080").await.unwrap().collect();
/// assert!(addrs.iter().all(|a| a.port() == 8080 && a.ip().is_loopback()));
/// let one: Vec<_> = mtcp::net::lookup_host("10.0.0.1:80").await.unwrap().collect();
/// assert_eq!(one, ["10.0.0.1:80".parse().unwrap()]);
/// # });
/// ```
pub async fn lookup_host<T: ToSocketAddrs>(
    host: T,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    let addrs = match host.target() {
        Target::Addrs(a) => a,
        Target::Name(name) => {
            resolve(move || std::net::ToSocketAddrs::to_socket_addrs(&name)).await?
        }
        Target::NamePort(name, port) => {
            resolve(move || std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port)))
                .await?
        }
    };
    Ok(addrs.into_iter())
}

async fn resolve<I>(
    f: impl FnOnce() -> io::Result<I> + Send + 'static,
) -> io::Result<Vec<SocketAddr>>
where
    I: Iterator<Item = SocketAddr>,
{
    crate::task::spawn_blocking(move || f().map(|i| i.collect()))
        .await
        .map_err(io::Error::from)?
}
