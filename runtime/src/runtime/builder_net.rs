//! The [`Builder`]'s network settings: where a runtime gets its device and
//! the stack its addresses.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use mtcp_stack::config::DeviceSpec;
use mtcp_stack::nic::faults::FaultConfig;
use mtcp_stack::nic::NicQueue;
use mtcp_stack::tcp::KeepaliveConfig;
use mtcp_stack::tcp::TcpConfig;
use mtcp_stack::wire::ethernet::EthernetAddress;
use mtcp_stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

use super::builder::Builder;
use crate::net::config::NetConfig;
use crate::net::keepalive::TcpKeepalive;

impl Builder {
    /// A builder configured from the environment: `MTCP_CORES` and the
    /// network variables (`MTCP_DEVICE`, `MTCP_ADDR`, `MTCP_GATEWAY`,
    /// `MTCP_MAC`, `MTCP_PCAP`, `MTCP_FAULTS`, `MTCP_DPDK_ARGS`,
    /// `MTCP_RING_FRAMES`, `MTCP_MAX_CONNECTIONS`, `MTCP_MAX_TIME_WAIT`) and `MTCP_SHUTDOWN_LINGER`
    /// ([`Builder::shutdown_linger`]). Settings
    /// made afterwards on the builder win over the environment.
    /// `#[mtcp::main]` uses this. It installs no logger: mtcp emits through
    /// the `log` facade and leaves the choice of logger to the program.
    ///
    /// # Errors
    /// `InvalidInput` with one line naming the bad variable, its value and
    /// the expected form.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Builder::from_env().unwrap().build().unwrap();
    /// rt.block_on(async {
    ///     let l = mtcp::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    ///     assert!(l.local_addr().unwrap().port() != 0);
    /// });
    /// ```
    pub fn from_env() -> io::Result<Builder> {
        let config = mtcp_stack::config::EnvConfig::from_env()?;
        let builder = Builder::new().cores(config.cores).net(config.net);
        Ok(match config.shutdown_linger {
            Some(linger) => builder.shutdown_linger(linger),
            None => builder,
        })
    }

    /// Gives the runtime a network: every core gets a stack over its queue
    /// of the configured device.
    pub fn net(mut self, config: NetConfig) -> Builder {
        self.net = Some(config);
        self
    }

    /// The network settings so far (the defaults when none were made).
    pub fn net_config(&self) -> NetConfig {
        self.net.clone().unwrap_or_default()
    }

    fn update_net(self, f: impl FnOnce(&mut NetConfig)) -> Builder {
        let mut config = self.net_config();
        f(&mut config);
        self.net(config)
    }

    /// The device (`MTCP_DEVICE`).
    pub fn device(self, device: DeviceSpec) -> Builder {
        self.update_net(|c| c.device = device)
    }

    /// The stack's address and prefix (`MTCP_ADDR`).
    pub fn addr(self, addr: Ipv4Cidr) -> Builder {
        self.update_net(|c| c.stack.addr = addr)
    }

    /// The default gateway (`MTCP_GATEWAY`).
    pub fn gateway(self, gateway: Ipv4Address) -> Builder {
        self.update_net(|c| c.stack.gateway = Some(gateway))
    }

    /// The stack's MAC address (`MTCP_MAC`).
    pub fn mac(self, mac: EthernetAddress) -> Builder {
        self.update_net(|c| c.stack.mac = Some(mac))
    }

    /// Writes every frame to this pcap file (`MTCP_PCAP`).
    pub fn pcap(self, path: impl Into<PathBuf>) -> Builder {
        let path = path.into();
        self.update_net(|c| c.pcap = Some(path))
    }

    /// Device-level fault injection (`MTCP_FAULTS`).
    pub fn faults(self, faults: FaultConfig) -> Builder {
        self.update_net(|c| c.faults = Some(faults))
    }

    /// Prints one line of each core's counters to stderr every `every`
    /// (`MTCP_STATS`); see `docs/configuration.md` for the line's fields.
    pub fn stats_interval(self, every: std::time::Duration) -> Builder {
        self.update_net(|c| c.stats = Some(every))
    }

    /// The TCP engine's settings (buffer sizes, connections, timers, …).
    pub fn tcp_config(self, tcp: TcpConfig) -> Builder {
        self.update_net(|c| c.stack.tcp = tcp)
    }

    /// The most connections per core (`MTCP_MAX_CONNECTIONS`, default
    /// 65536, up to 16777216): TCB slab and flow table are sized for it at
    /// start, their memory committed only as connections arrive. Past it a
    /// SYN is answered with a RST (counted in `table_full_resets`).
    pub fn max_connections(self, n: usize) -> Builder {
        self.update_net(|c| c.stack.tcp.max_connections = n)
    }

    /// The most TIME-WAIT entries per core (`MTCP_MAX_TIME_WAIT`, default
    /// 262144; Linux's `tcp_max_tw_buckets`). TIME-WAIT does not use
    /// connection slots; past this cap a connection closes without
    /// TIME-WAIT (counted in `time_wait_overflow`).
    pub fn max_time_wait(self, n: usize) -> Builder {
        self.update_net(|c| c.stack.tcp.max_time_wait = n)
    }

    /// Keepalive on for every connection, with this timing (unset values:
    /// 7200 s idle, 75 s interval, 9 probes); `None` turns the default off
    /// (sockets may still ask). `MTCP_KEEPALIVE` sets the same.
    ///
    /// A zero time, interval or retry count, or more than 255 retries, is
    /// a start error naming `keepalive`.
    pub fn keepalive(self, keepalive: Option<TcpKeepalive>) -> Builder {
        self.update_net(|c| match keepalive {
            Some(ka) => {
                // An invalid timing is kept invalid, for the start check.
                c.stack.tcp.keepalive =
                    ka.resolve(KeepaliveConfig::default())
                        .unwrap_or(KeepaliveConfig {
                            count: 0,
                            ..KeepaliveConfig::default()
                        });
                c.stack.tcp.keepalive_default = true;
            }
            None => c.stack.tcp.keepalive_default = false,
        })
    }

    /// How long an orphaned connection (closed by the application) waits
    /// in FIN-WAIT-2 for the peer's FIN (Linux `tcp_fin_timeout`; 60 s).
    /// `MTCP_FIN_TIMEOUT` sets the same.
    pub fn fin_timeout(self, timeout: Duration) -> Builder {
        self.update_net(|c| c.stack.tcp.fin_timeout = timeout)
    }

    /// Retransmissions an orphaned connection gets before it is reset
    /// (Linux `tcp_orphan_retries`; 8).
    pub fn orphan_retries(self, retries: u8) -> Builder {
        self.update_net(|c| c.stack.tcp.orphan_retries = retries)
    }

    /// Per-socket send and receive buffer limits, in bytes.
    pub fn buffer_sizes(self, send: usize, recv: usize) -> Builder {
        self.update_net(|c| {
            c.stack.tcp.send_buffer = send;
            c.stack.tcp.recv_buffer = recv;
        })
    }

    /// Uses these NIC queues, one per core in core order, instead of opening
    /// a device: e.g. the two ports of an in-memory NIC pair joining a server
    /// runtime and a client runtime.
    pub fn nic_queues(self, queues: Vec<Box<dyn NicQueue>>) -> Builder {
        self.update_net(|c| *c = c.clone().with_queues(queues))
    }
}
