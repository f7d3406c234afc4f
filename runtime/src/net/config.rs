//! The network half of a runtime's configuration, and opening its device.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use mtcp_stack::config::DeviceSpec;
use mtcp_stack::nic::af_packet::AfPacketDevice;
use mtcp_stack::nic::faults::FaultyQueue;
use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::nic::pcap::{PcapQueue, PcapWriter};
use mtcp_stack::nic::tap::TapQueue;
use mtcp_stack::nic::xdp::XdpDevice;
use mtcp_stack::nic::{NicError, NicQueue, RingSizes};
use mtcp_stack::stack::Stack;

use super::driver::StackDriver;
use crate::io_driver::CoreId;

/// The network settings of a runtime (the device, capture, fault
/// injection and each core's stack): `mtcp-stack`'s one configuration
/// type, read from the `MTCP_*` variables by [`NetConfig::from_env`] (see
/// `docs/configuration.md`); the [`Builder`](crate::runtime::Builder)'s
/// network setters change single fields.
pub use mtcp_stack::config::NetConfig;

/// Opens `config`'s device with one queue per core (or takes the queues it
/// was given), wrapped for capture and fault injection as configured.
fn open(config: &NetConfig, cores: usize) -> io::Result<Vec<Box<dyn NicQueue>>> {
    let queues = match config.take_queues(cores) {
        Some(given) => given?,
        None => open_device(&config.device, &config.dpdk_args, config.ring, cores)?,
    };
    let pcap = match &config.pcap {
        Some(path) => Some(
            PcapWriter::create(path)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "MTCP_PCAP={:?}: cannot create the file: {e}",
                            path.display()
                        ),
                    )
                })?
                .shared(),
        ),
        None => None,
    };
    Ok(queues
        .into_iter()
        .enumerate()
        .map(|(i, mut q)| {
            if let Some(f) = config.faults {
                let mut f = f;
                f.seed = f.seed.wrapping_add(i as u64 * 0x9e37_79b9);
                q = Box::new(FaultyQueue::new(q, f));
            }
            if let Some(w) = &pcap {
                q = Box::new(PcapQueue::new(q, w.clone()));
            }
            q
        })
        .collect())
}

/// Every core's slot, once the device is open.
type Slots = Arc<Mutex<Vec<CoreSlot>>>;

/// Builds each core's [`Stack`] over its queue. The device is opened once,
/// by the first core to start, with one queue per core of the runtime. A
/// core's stack outlives one `block_on`: its driver hands it back when the
/// core stops, and the next start of that core takes it up again.
pub(crate) struct StackFactory {
    config: NetConfig,
    opened: OnceLock<Result<Slots, (io::ErrorKind, String)>>,
}

impl StackFactory {
    pub(crate) fn new(config: NetConfig) -> StackFactory {
        StackFactory {
            config,
            opened: OnceLock::new(),
        }
    }

    /// Core `core`'s stack and device, on its thread.
    pub(crate) fn build(&self, core: CoreId) -> io::Result<StackDriver> {
        let cores = core.count();
        let slots = self.opened.get_or_init(|| {
            open(&self.config, cores)
                .map(|qs| Arc::new(Mutex::new(qs.into_iter().map(CoreSlot::Queue).collect())))
                .map_err(|e| (e.kind(), e.to_string()))
        });
        let slots = slots
            .as_ref()
            .map_err(|(kind, msg)| io::Error::new(*kind, msg.clone()))?;
        let index = core.index();
        let taken = slots.lock().ok().and_then(|mut s| {
            s.get_mut(index)
                .map(|slot| std::mem::replace(slot, CoreSlot::InUse))
        });
        let stack = match taken {
            Some(CoreSlot::Queue(queue)) => Stack::new(self.config.stack.clone(), queue)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
            Some(CoreSlot::Stack(stack)) => *stack,
            Some(CoreSlot::InUse) | None => {
                return Err(io::Error::other(format!(
                    "mtcp: core {index}'s NIC queue is in use by another run"
                )))
            }
        };
        StackDriver::new(stack, slots.clone(), index, self.config.stats)
    }
}

/// What a core finds when it starts: its queue (first start), its stack
/// (handed back by the previous run), or nothing (in use).
pub(crate) enum CoreSlot {
    Queue(Box<dyn NicQueue>),
    Stack(Box<Stack>),
    InUse,
}

/// Opens `device` with `queues` queues.
fn open_device(
    device: &DeviceSpec,
    _dpdk_args: &[String],
    ring: RingSizes,
    queues: usize,
) -> io::Result<Vec<Box<dyn NicQueue>>> {
    match device {
        DeviceSpec::Memory => {
            // A port of a fresh pair; its peer port is dropped, so only the
            // stack's own loopback reaches it. Two runtimes talk over a
            // pair given with `NetConfig::with_queues`.
            let (port, _peer) = MemoryNic::pair_with(&MemoryNicConfig {
                queues,
                ..MemoryNicConfig::default()
            })
            .map_err(|e| io::Error::other(format!("MTCP_DEVICE=memory: {e}")))?;
            Ok(port.split_boxed())
        }
        DeviceSpec::Tap(name) => {
            let r = if queues == 1 {
                TapQueue::open(name).map(|q| vec![Box::new(q) as Box<dyn NicQueue>])
            } else {
                TapQueue::open_multi(name, queues).map(boxed)
            };
            r.map_err(|e| device_error(device, e))
        }
        DeviceSpec::AfPacket(name) => AfPacketDevice::open_with(name, queues, ring)
            .map(boxed)
            .map_err(|e| device_error(device, e)),
        DeviceSpec::Xdp(name) => XdpDevice::open(name, queues)
            .map(boxed)
            .map_err(|e| device_error(device, e)),
        DeviceSpec::Dpdk => open_dpdk(_dpdk_args, queues),
    }
}

fn boxed<Q: NicQueue + 'static>(qs: Vec<Q>) -> Vec<Box<dyn NicQueue>> {
    qs.into_iter()
        .map(|q| Box::new(q) as Box<dyn NicQueue>)
        .collect()
}

/// One line naming the variable, its value and what went wrong.
fn device_error(device: &DeviceSpec, e: NicError) -> io::Error {
    let kind = match e {
        NicError::PermissionDenied => io::ErrorKind::PermissionDenied,
        NicError::NoSuchInterface => io::ErrorKind::NotFound,
        NicError::Busy => io::ErrorKind::AddrInUse,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("MTCP_DEVICE={device}: {e}"))
}

#[cfg(not(feature = "dpdk"))]
fn open_dpdk(_args: &[String], _queues: usize) -> io::Result<Vec<Box<dyn NicQueue>>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "MTCP_DEVICE=dpdk: this build has no DPDK support; rebuild with `--features dpdk` \
         (needs: apt-get install -y libdpdk-dev pkg-config libclang-dev)",
    ))
}

#[cfg(feature = "dpdk")]
fn open_dpdk(args: &[String], queues: usize) -> io::Result<Vec<Box<dyn NicQueue>>> {
    mtcp_stack::nic::dpdk::DpdkDevice::open(args, None, queues)
        .map(boxed)
        .map_err(|e| device_error(&DeviceSpec::Dpdk, e))
}
