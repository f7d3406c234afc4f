//! The process-wide part: one slot per signal number, the action run by
//! the signal handler, the self-pipe and the thread that turns its bytes
//! into wakes. The handler itself is signal-hook-registry's, which chains
//! to whatever handler was there before.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::Waker;

/// Signal numbers `1..SLOTS` can be listened for (Linux's real-time
/// signals end at 64).
pub(super) const SLOTS: usize = 65;

pub(super) struct Slot {
    /// Set by the handler, taken by the signal thread.
    pending: AtomicBool,
    /// Deliveries seen by the signal thread so far.
    pub(super) generation: AtomicU64,
    /// Listeners (by id) waiting for the next delivery.
    pub(super) waiters: Mutex<Vec<(u64, Waker)>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    pending: AtomicBool::new(false),
    generation: AtomicU64::new(0),
    waiters: Mutex::new(Vec::new()),
};

pub(super) static SIGNALS: [Slot; SLOTS] = [EMPTY; SLOTS];

/// Ids for listeners.
pub(super) static NEXT_LISTENER: AtomicU64 = AtomicU64::new(0);

/// The write end of the self-pipe (-1 until it exists).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// The pipe and thread, started once: `Err(errno)` if that failed.
static STARTED: OnceLock<Result<(), i32>> = OnceLock::new();

/// Which signals have our handler (serialises installation).
static INSTALLED: Mutex<[bool; SLOTS]> = Mutex::new([false; SLOTS]);

/// The action run in the signal handler: async-signal-safe operations
/// only (an atomic store and one `write(2)`). signal-hook-registry's
/// handler around it saves and restores errno and first runs the handler
/// that was installed before ours.
fn on_signal(sig: libc::c_int) {
    if let Some(slot) = usize::try_from(sig).ok().and_then(|i| SIGNALS.get(i)) {
        slot.pending.store(true, Ordering::SeqCst);
    }
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: writes one byte from a live stack variable to our pipe;
        // write(2) is async-signal-safe. A full pipe (EAGAIN) is fine: the
        // thread has bytes to read and will see the flag.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Creates the self-pipe and starts the signal thread, once.
fn start() -> io::Result<()> {
    let r = STARTED.get_or_init(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        let [read_fd, write_fd] = fds;
        // SAFETY: fcntl on descriptors we just created and own.
        unsafe {
            libc::fcntl(read_fd, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(write_fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(write_fd, libc::F_GETFL);
            libc::fcntl(write_fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let spawned = std::thread::Builder::new()
            .name("mtcp-signal".to_owned())
            .spawn(move || signal_thread(read_fd));
        if let Err(e) = spawned {
            // SAFETY: closing the descriptors we created; nobody else has
            // them yet.
            unsafe {
                libc::close(read_fd);
                libc::close(write_fd);
            }
            return Err(e.raw_os_error().unwrap_or(0));
        }
        WRITE_FD.store(write_fd, Ordering::SeqCst);
        Ok(())
    });
    r.map_err(|errno| {
        if errno == 0 {
            io::Error::other("mtcp: the signal thread could not start")
        } else {
            io::Error::from_raw_os_error(errno)
        }
    })
}

/// Blocks on the pipe; for every signal flagged, bumps its generation and
/// wakes its waiters.
fn signal_thread(read_fd: libc::c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live buffer of the given length.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!(
                "mtcp: the signal thread stopped: {}",
                io::Error::last_os_error()
            );
            return;
        }
        if n == 0 {
            return;
        }
        for slot in SIGNALS.iter() {
            if slot.pending.swap(false, Ordering::SeqCst) {
                slot.generation.fetch_add(1, Ordering::SeqCst);
                let waiters =
                    std::mem::take(&mut *slot.waiters.lock().unwrap_or_else(|e| e.into_inner()));
                for (_, w) in waiters {
                    w.wake();
                }
            }
        }
    }
}

/// Signals whose handling may not be replaced (SIGILL, SIGFPE, SIGKILL,
/// SIGSEGV, SIGSTOP: tokio refuses them too, and signal-hook-registry will
/// not take them).
fn forbidden(sig: libc::c_int) -> bool {
    signal_hook_registry::FORBIDDEN.contains(&sig)
}

/// Makes sure our handler is installed for `sig`; returns its slot index.
pub(super) fn register(sig: libc::c_int) -> io::Result<usize> {
    let index = usize::try_from(sig)
        .ok()
        .filter(|&i| i > 0 && i < SLOTS)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mtcp: signal {sig} is out of range"),
            )
        })?;
    if forbidden(sig) {
        return Err(io::Error::other(format!(
            "Refusing to register signal {sig}: its handling may not be replaced"
        )));
    }
    start()?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed[index] {
        return Ok(index);
    }
    // Chained, not replaced: signal-hook-registry keeps the action that
    // was installed before (by another library, through sigaction(2) or
    // signal-hook) and runs it before ours on every delivery; tokio's
    // signal handling goes through the same registry.
    // SAFETY: `on_signal` is async-signal-safe (an atomic store and one
    // write(2)) and does not panic; `sig` is not one of the registry's
    // forbidden signals (checked above), so `register` does not panic.
    unsafe { signal_hook_registry::register(sig, move || on_signal(sig)) }?;
    installed[index] = true;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use crate::signal::unix::{signal, SignalKind};
    use crate::time::timeout;

    /// Deliveries seen by the handler "another library" installed first.
    static EARLIER: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn earlier_handler(_sig: libc::c_int) {
        EARLIER.fetch_add(1, Ordering::SeqCst);
    }

    /// Installs `earlier_handler` for `sig` with plain sigaction(2), as a
    /// library that knows nothing of mtcp would.
    fn install_earlier(sig: libc::c_int) {
        // SAFETY: a zeroed sigaction is a valid starting value; we set an
        // async-signal-safe handler (one atomic add) and an empty mask.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = earlier_handler as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
    }

    fn raise(sig: libc::c_int) {
        // SAFETY: raise(3) delivers `sig` to this process, which has a
        // handler for it (installed by the test first).
        assert_eq!(unsafe { libc::raise(sig) }, 0);
    }

    #[test]
    fn a_handler_installed_before_ours_still_runs() {
        // SIGWINCH is used by no other test of this crate, and its default
        // action is to ignore it, so a stray one harms nothing.
        let sig = libc::SIGWINCH;
        install_earlier(sig);
        raise(sig);
        assert_eq!(EARLIER.load(Ordering::SeqCst), 1);
        crate::runtime::block_on(async move {
            let mut ours = signal(SignalKind::window_change()).unwrap();
            for n in 2..=4 {
                raise(sig);
                assert_eq!(
                    timeout(Duration::from_secs(5), ours.recv()).await,
                    Ok(Some(())),
                    "delivery {n} did not reach mtcp's listener"
                );
                // The earlier handler ran too, once per delivery.
                assert_eq!(EARLIER.load(Ordering::SeqCst), n);
            }
        });
        // Both stay: a second listener does not install anything again.
        let _again = signal(SignalKind::window_change()).unwrap();
        raise(sig);
        assert_eq!(EARLIER.load(Ordering::SeqCst), 5);
    }
}
