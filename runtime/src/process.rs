//! Child processes shaped like `tokio::process`: [`Command`], [`Child`],
//! and async pipes.
//!
//! # Differences from tokio
//!
//! mtcp has no SIGCHLD-driven reaper: [`Child::wait`] polls `try_wait` on a
//! timer (every 1 ms at first, backing off to 20 ms), and
//! [`Command::output`]/[`Command::status`] wait on a blocking thread.
//! A child's stdout/stderr are read by a helper thread each; writes to
//! [`ChildStdin`] are direct (blocking) writes on the core, fine for input
//! that fits the pipe (64 KiB on Linux) or a child that reads it.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::io_std::{close_reader, poll_read_shared, start_reader, ReaderShared};

/// A process builder (tokio's `Command`), wrapping [`std::process::Command`].
///
/// # Examples
///
/// ```
/// use mtcp::process::Command;
///
/// # mtcp::runtime::block_on(async {
/// let out = Command::new("echo").arg("hello").output().await.unwrap();
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello\n");
/// # });
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}

impl Command {
    /// A command running `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: std::process::Command::new(program),
            kill_on_drop: false,
        }
    }

    /// The `std` builder, to set what this wrapper does not expose.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Clears the environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// Sets the child's standard input.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self
    }

    /// Sets the child's standard output.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self
    }

    /// Sets the child's standard error.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self
    }

    /// Kill the child when its [`Child`] is dropped (default: no).
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// Starts the child.
    ///
    /// # Errors
    /// As [`std::process::Command::spawn`].
    pub fn spawn(&mut self) -> io::Result<Child> {
        let mut std = self.std.spawn()?;
        let stdin = std.stdin.take().map(|s| ChildStdin { std: s });
        let stdout = std
            .stdout
            .take()
            .map(|s| ChildStdout(PipeReader::new(s, "mtcp-child-stdout")));
        let stderr = std
            .stderr
            .take()
            .map(|s| ChildStderr(PipeReader::new(s, "mtcp-child-stderr")));
        Ok(Child {
            std: Some(std),
            status: None,
            kill_on_drop: self.kill_on_drop,
            stdin,
            stdout,
            stderr,
        })
    }

    /// Runs the child to completion, its stdout and stderr captured
    /// (stdin from `/dev/null` unless set).
    ///
    /// # Errors
    /// As [`std::process::Command::output`].
    pub async fn output(&mut self) -> io::Result<Output> {
        self.std.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.std.spawn()?;
        crate::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(io::Error::from)?
    }

    /// Runs the child to completion and returns its exit status.
    ///
    /// # Errors
    /// As [`std::process::Command::status`].
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.std.spawn()?;
        crate::task::spawn_blocking(move || child.wait())
            .await
            .map_err(io::Error::from)?
    }
}

/// A running child process (tokio's `Child`).
pub struct Child {
    std: Option<std::process::Child>,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The child's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Child {
    /// The child's process id, or `None` once it has been waited for.
    pub fn id(&self) -> Option<u32> {
        match (&self.std, self.status) {
            (Some(c), None) => Some(c.id()),
            _ => None,
        }
    }

    /// The exit status if the child has exited, without waiting.
    ///
    /// # Errors
    /// As [`std::process::Child::try_wait`].
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(c) = self.std.as_mut() else {
            return Err(io::Error::other("mtcp: child already taken"));
        };
        let s = c.try_wait()?;
        self.status = s;
        Ok(s)
    }

    /// Waits for the child to exit (closing its stdin first, as tokio
    /// does, so a child reading it can finish).
    ///
    /// # Errors
    /// As [`std::process::Child::try_wait`].
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            crate::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits for the child and collects its remaining stdout and stderr.
    ///
    /// # Errors
    /// An error reading the pipes or waiting.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        use tokio::io::AsyncReadExt;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let (out, err) = tokio::join!(
            async {
                match self.stdout.as_mut() {
                    Some(s) => s.read_to_end(&mut stdout).await.map(|_| ()),
                    None => Ok(()),
                }
            },
            async {
                match self.stderr.as_mut() {
                    Some(s) => s.read_to_end(&mut stderr).await.map(|_| ()),
                    None => Ok(()),
                }
            }
        );
        out?;
        err?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Sends SIGKILL (on Unix) without waiting.
    ///
    /// # Errors
    /// As [`std::process::Child::kill`].
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match self.std.as_mut() {
            Some(c) => c.kill(),
            None => Ok(()),
        }
    }

    /// Kills the child and waits for it.
    ///
    /// # Errors
    /// As [`start_kill`](Self::start_kill) and [`wait`](Self::wait).
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(|_| ())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.status.is_none() {
            if let Some(c) = self.std.as_mut() {
                let _ = c.kill();
                let _ = c.try_wait();
            }
        }
    }
}

/// The child's standard input (writes are direct, blocking writes).
#[derive(Debug)]
pub struct ChildStdin {
    std: std::process::ChildStdin,
}

impl AsyncWrite for ChildStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.std.write(buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.std.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A pipe read by a helper thread.
struct PipeReader {
    shared: Arc<ReaderShared>,
}

impl PipeReader {
    fn new(src: impl io::Read + Send + 'static, name: &str) -> PipeReader {
        PipeReader {
            shared: start_reader(src, name),
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        close_reader(&self.shared);
    }
}

/// The child's standard output, as an [`AsyncRead`].
pub struct ChildStdout(PipeReader);

/// The child's standard error, as an [`AsyncRead`].
pub struct ChildStderr(PipeReader);

macro_rules! pipe_read {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).finish()
            }
        }

        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_shared(&self.0.shared, cx, buf)
            }
        }
    };
}

pipe_read!(ChildStdout);
pipe_read!(ChildStderr);
