//! Wakers without allocation or reference counts.
//!
//! A task's [`Waker`] carries no pointer: its data word is a *token* that
//! names the task by position,
//!
//! ```text
//!  63        56 55               40 39            24 23              0
//! +------------+-------------------+----------------+-----------------+
//! | core gen   | core slot         | task gen       | task index      |
//! +------------+-------------------+----------------+-----------------+
//! ```
//!
//! so cloning and dropping a waker cost nothing, and waking it is a lookup.
//! A wake on the task's own core thread (the common case: the reactor or
//! another task on the same core) sets the task's scheduled flag and pushes
//! its index on the local run queue. A wake from any other thread looks the
//! core up in a global [registry](Registry) of cores and sends the token over
//! that core's cross-thread queue, unparking the core if it sleeps.
//!
//! Generations make stale wakers harmless: a waker of a finished task, or of
//! a core that has stopped, finds a different generation and does nothing. If
//! a generation ever wraps, the worst outcome is a spurious poll, which every
//! future must tolerate, so soundness never depends on them.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{RawWaker, RawWakerVTable, Waker};

use crossbeam_channel::{Receiver, Sender};

use crate::io_driver::Unparker;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("mtcp packs task identities into a pointer-sized word and needs a 64-bit target");

/// Bits of the task index in a token.
const INDEX_BITS: u32 = 24;
/// Bits of the task generation.
const TASK_GEN_BITS: u32 = 16;
/// Bits of the core's registry slot.
const CORE_SLOT_BITS: u32 = 16;

/// The largest task index; reserved for a core's main future.
pub(crate) const MAIN_INDEX: u32 = (1 << INDEX_BITS) - 1;
/// How many tasks one core can hold at once.
pub(crate) const MAX_TASKS: usize = MAIN_INDEX as usize;

/// Identifies one running core among all runtimes of the process: its slot
/// in the registry and that slot's generation, packed as the token's top 24
/// bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct CoreKey(u32);

/// A task's position on its core: the token without the core part.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskKey {
    pub(crate) index: u32,
    pub(crate) gen: u16,
}

impl TaskKey {
    /// The key of a core's main future (the one `block_on` drives).
    pub(crate) const MAIN: TaskKey = TaskKey {
        index: MAIN_INDEX,
        gen: 0,
    };
}

/// Packs a core and a task into a waker token.
pub(crate) fn token(core: CoreKey, task: TaskKey) -> usize {
    ((core.0 as usize) << (INDEX_BITS + TASK_GEN_BITS))
        | ((task.gen as usize) << INDEX_BITS)
        | task.index as usize
}

/// Splits a token back into its core and task.
pub(crate) fn untoken(token: usize) -> (CoreKey, TaskKey) {
    let index = (token & ((1 << INDEX_BITS) - 1)) as u32;
    let gen = ((token >> INDEX_BITS) & ((1 << TASK_GEN_BITS) - 1)) as u16;
    let core = (token >> (INDEX_BITS + TASK_GEN_BITS)) as u32;
    (CoreKey(core), TaskKey { index, gen })
}

/// The waker of `task` on `core`. Allocation-free.
pub(crate) fn waker(core: CoreKey, task: TaskKey) -> Waker {
    let raw = RawWaker::new(std::ptr::without_provenance(token(core, task)), &VTABLE);
    // SAFETY: the vtable functions never dereference the data word (it is a
    // plain integer) and each of them is thread-safe: `wake_token` touches
    // only the current thread's core or, for any other core, the
    // lock-protected registry and a crossbeam channel. So the RawWaker
    // contract (Send + Sync behaviour, clone/drop balance) holds trivially.
    unsafe { Waker::from_raw(raw) }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake_raw(data: *const ()) {
    wake_token(data.addr());
}

fn drop_raw(_: *const ()) {}

/// Routes a wake to the task's core: locally when we are on that core's
/// thread, else over its cross-thread queue.
pub(crate) fn wake_token(token: usize) {
    let (core, task) = untoken(token);
    if super::current::schedule_local(core, task) {
        return;
    }
    if let Some(remote) = REGISTRY.lookup(core) {
        remote.send(Msg::Wake(token));
    }
}

/// A message to a core, drained once per tick.
pub(crate) enum Msg {
    /// Wake a task (a token).
    Wake(usize),
    /// Run a closure on the core's thread.
    Run(Box<dyn FnOnce() + Send>),
    /// Cancel a timer of the core's wheel (a `TimerKey` in bits): a
    /// [`Sleep`](crate::time::Sleep) dropped on another thread.
    CancelTimer(u64),
    /// Fire the core's graceful shutdown signal.
    Shutdown,
    /// Stop the core's loop now, dropping its main future and tasks.
    Stop,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Wake(t) => write!(f, "Wake({t:#x})"),
            Msg::Run(_) => f.write_str("Run(..)"),
            Msg::CancelTimer(k) => write!(f, "CancelTimer({k:#x})"),
            Msg::Shutdown => f.write_str("Shutdown"),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

/// What other threads hold of a core: its inbox and a way to unpark it.
pub(crate) struct Remote {
    tx: Sender<Msg>,
    /// Set by a sender, cleared by the core before it drains its inbox:
    /// unpark only on the false → true edge.
    notified: AtomicBool,
    unpark: Unparker,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("queued", &self.tx.len())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A new inbox; the receiver stays with the core.
    pub(crate) fn new(unpark: Unparker) -> (Arc<Remote>, Receiver<Msg>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let remote = Remote {
            tx,
            notified: AtomicBool::new(false),
            unpark,
        };
        (Arc::new(remote), rx)
    }

    /// Queues `msg` and unparks the core if this is the first message since
    /// it last looked. Returns false when the core has gone.
    pub(crate) fn send(&self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        // Pairs with the fence in `begin_drain`: either the core sees our
        // message in this drain, or it cleared `notified` before our swap and
        // we unpark it.
        fence(Ordering::SeqCst);
        if !self.notified.swap(true, Ordering::SeqCst) {
            (self.unpark)();
        }
        true
    }

    /// Called by the core before draining its inbox.
    pub(crate) fn begin_drain(&self) {
        self.notified.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }
}

/// The process-wide table of running cores, for cross-thread wakes.
pub(crate) struct Registry {
    slots: RwLock<Vec<RegSlot>>,
}

struct RegSlot {
    gen: u8,
    remote: Option<Arc<Remote>>,
}

pub(crate) static REGISTRY: Registry = Registry {
    slots: RwLock::new(Vec::new()),
};

impl Registry {
    /// Registers a core; its key goes into every token of its tasks.
    ///
    /// # Panics
    ///
    /// If 65,536 cores run at once in this process.
    pub(crate) fn register(&self, remote: Arc<Remote>) -> CoreKey {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let free = slots.iter().position(|s| s.remote.is_none());
        let slot = match free {
            Some(i) => i,
            None => {
                assert!(
                    slots.len() < (1 << CORE_SLOT_BITS),
                    "mtcp: too many cores running at once"
                );
                slots.push(RegSlot {
                    gen: 0,
                    remote: None,
                });
                slots.len() - 1
            }
        };
        let entry = &mut slots[slot];
        entry.gen = entry.gen.wrapping_add(1);
        entry.remote = Some(remote);
        CoreKey(((entry.gen as u32) << CORE_SLOT_BITS) | slot as u32)
    }

    /// Removes a core; later wakes for it are dropped.
    pub(crate) fn unregister(&self, key: CoreKey) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let (slot, gen) = Self::split(key);
        if let Some(entry) = slots.get_mut(slot) {
            if entry.gen == gen {
                entry.remote = None;
            }
        }
    }

    /// The inbox of a running core.
    pub(crate) fn lookup(&self, key: CoreKey) -> Option<Arc<Remote>> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let (slot, gen) = Self::split(key);
        let entry = slots.get(slot)?;
        if entry.gen == gen {
            entry.remote.clone()
        } else {
            None
        }
    }

    fn split(key: CoreKey) -> (usize, u8) {
        (
            (key.0 & ((1 << CORE_SLOT_BITS) - 1)) as usize,
            (key.0 >> CORE_SLOT_BITS) as u8,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let core = CoreKey((0xAB << 16) | 0x1234);
        let task = TaskKey {
            index: 0x00AB_CDEF,
            gen: 0xBEEF,
        };
        let t = token(core, task);
        assert_eq!(untoken(t), (core, task));
        let main = token(core, TaskKey::MAIN);
        assert_eq!(untoken(main), (core, TaskKey::MAIN));
    }

    #[test]
    fn registry_generations_reject_stale_keys() {
        let (remote, _rx) = Remote::new(Arc::new(|| {}));
        let key = REGISTRY.register(remote.clone());
        assert!(REGISTRY.lookup(key).is_some());
        REGISTRY.unregister(key);
        assert!(REGISTRY.lookup(key).is_none());
        let key2 = REGISTRY.register(remote);
        assert_ne!(key, key2);
        assert!(REGISTRY.lookup(key).is_none());
        REGISTRY.unregister(key2);
    }

    #[test]
    fn remote_send_unparks_once_per_drain() {
        use std::sync::atomic::AtomicUsize;
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let (remote, rx) = Remote::new(Arc::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(remote.send(Msg::Wake(1)));
        assert!(remote.send(Msg::Wake(2)));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        remote.begin_drain();
        assert_eq!(rx.try_iter().count(), 2);
        assert!(remote.send(Msg::Shutdown));
        assert_eq!(count.load(Ordering::SeqCst), 2);
        drop(rx);
        assert!(!remote.send(Msg::Stop));
    }
}
