//! The process's standard streams as async I/O: [`stdin`], [`stdout`],
//! [`stderr`], shaped like tokio's (`tokio::io::stdin` etc.).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much one read of the reader thread takes from the OS at most.
const CHUNK: usize = 8 * 1024;

#[derive(Default)]
struct StdinState {
    buf: VecDeque<u8>,
    eof: bool,
    error: Option<io::Error>,
    /// A reader is waiting: the thread should read more.
    wanted: bool,
    /// The reading side is gone: the thread should end.
    closed: bool,
    waker: Option<Waker>,
}

/// A blocking source read by a helper thread, on demand.
pub(crate) struct ReaderShared {
    state: Mutex<StdinState>,
    wanted: Condvar,
}

/// Starts a thread that reads `src` whenever a task waits for data and the
/// buffer is empty.
pub(crate) fn start_reader(src: impl Read + Send + 'static, name: &str) -> Arc<ReaderShared> {
    let shared = Arc::new(ReaderShared {
        state: Mutex::new(StdinState::default()),
        wanted: Condvar::new(),
    });
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || reader_thread(src, &s));
    if let Err(e) = spawned {
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.error = Some(e);
    }
    shared
}

/// The one reader thread of the process's standard input (it is global).
fn stdin_shared() -> &'static Arc<ReaderShared> {
    static SHARED: OnceLock<Arc<ReaderShared>> = OnceLock::new();
    SHARED.get_or_init(|| start_reader(io::stdin(), "mtcp-stdin"))
}

fn reader_thread(mut src: impl Read, shared: &ReaderShared) {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while !st.wanted && !st.closed {
                st = shared.wanted.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.closed {
                return;
            }
        }
        let r = loop {
            match src.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let (waker, done) = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.wanted = false;
            let done = match r {
                Ok(0) => {
                    st.eof = true;
                    true
                }
                Ok(n) => {
                    st.buf.extend(&chunk[..n]);
                    false
                }
                Err(e) => {
                    st.error = Some(e);
                    false
                }
            };
            (st.waker.take(), done)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if done {
            return;
        }
    }
}

/// Tells the helper thread to end once it is not blocked in a read (then,
/// at the source's end of stream or error).
pub(crate) fn close_reader(shared: &ReaderShared) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    st.closed = true;
    shared.wanted.notify_one();
}

/// Reads what the helper thread buffered, or asks it for more.
pub(crate) fn poll_read_shared(
    shared: &ReaderShared,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if !st.buf.is_empty() {
        let n = buf.remaining().min(st.buf.len());
        let (a, b) = st.buf.as_slices();
        let from_a = n.min(a.len());
        buf.put_slice(&a[..from_a]);
        buf.put_slice(&b[..n - from_a]);
        st.buf.drain(..n);
        return Poll::Ready(Ok(()));
    }
    if let Some(e) = st.error.take() {
        return Poll::Ready(Err(e));
    }
    if st.eof || buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    match &st.waker {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => st.waker = Some(cx.waker().clone()),
    }
    if !st.wanted {
        st.wanted = true;
        shared.wanted.notify_one();
    }
    Poll::Pending
}

/// The process's standard input, as an [`AsyncRead`] (tokio's `Stdin`).
///
/// A helper thread does the blocking reads, only while a task waits for
/// input, so the core is never blocked. All `Stdin` handles share one
/// buffer; as in tokio, wrap it in a [`BufReader`](tokio::io::BufReader)
/// for lines.
pub struct Stdin {
    _private: (),
}

/// A handle to the process's standard input.
///
/// # Examples
///
/// ```no_run
/// use mtcp::io::{AsyncBufReadExt, BufReader};
///
/// #[mtcp::main]
/// async fn main() -> std::io::Result<()> {
///     let mut lines = BufReader::new(mtcp::io::stdin()).lines();
///     while let Some(line) = lines.next_line().await? {
///         println!("read {line:?}");
///     }
///     Ok(())
/// }
/// ```
pub fn stdin() -> Stdin {
    Stdin { _private: () }
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stdin").finish()
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_shared(stdin_shared(), cx, buf)
    }
}

/// The process's standard output, as an [`AsyncWrite`] (tokio's
/// `Stdout`).
///
/// # Differences from tokio
///
/// Writes go straight to [`std::io::Stdout`] on the calling core, as
/// `println!` does (a full pipe blocks the core), rather than through a
/// blocking-thread pool.
pub struct Stdout {
    _private: (),
}

/// A handle to the process's standard output.
///
/// # Examples
///
/// ```
/// use mtcp::io::AsyncWriteExt;
///
/// # mtcp::runtime::block_on(async {
/// let mut out = mtcp::io::stdout();
/// out.write_all(b"hello\n").await.unwrap();
/// out.flush().await.unwrap();
/// # });
/// ```
pub fn stdout() -> Stdout {
    Stdout { _private: () }
}

/// The process's standard error, as an [`AsyncWrite`] (tokio's
/// `Stderr`); written like [`Stdout`].
pub struct Stderr {
    _private: (),
}

/// A handle to the process's standard error.
pub fn stderr() -> Stderr {
    Stderr { _private: () }
}

macro_rules! sync_writer {
    ($t:ident, $std:path) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).finish()
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready($std().lock().write(buf))
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready($std().lock().flush())
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready($std().lock().flush())
            }
        }
    };
}

sync_writer!(Stdout, io::stdout);
sync_writer!(Stderr, io::stderr);
