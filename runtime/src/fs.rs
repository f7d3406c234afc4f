//! Filesystem access shaped like `tokio::fs`.
//!
//! The whole-file and directory functions ([`read`], [`write`](fn@write),
//! [`read_to_string`], [`create_dir_all`], …) run `std::fs` on a
//! [blocking thread](crate::task::spawn_blocking), so the core keeps
//! serving its sockets meanwhile.
//!
//! # Differences from tokio
//!
//! [`File`] and [`ReadDir`] call `std::fs` directly on the core's thread:
//! each read, write or seek is one system call there (fast for regular
//! files in the page cache, but a slow disk or NFS stalls the core). Use
//! the whole-file functions, or [`spawn_blocking`](crate::task::spawn_blocking),
//! for slow media. `set_len`, `sync_all` and `metadata` on `File` are
//! likewise direct calls.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

pub use std::fs::{Metadata, Permissions};

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    crate::task::spawn_blocking(f)
        .await
        .map_err(io::Error::from)?
}

macro_rules! path_fn {
    ($(#[$doc:meta])* $name:ident($($arg:ident),*) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// As the `std::fs` function of the same name.
        pub async fn $name($($arg: impl AsRef<Path>),*) -> io::Result<$ret> {
            $(let $arg = $arg.as_ref().to_owned();)*
            blocking(move || std::fs::$name($(&$arg),*)).await
        }
    };
}

path_fn!(
    /// Reads the whole file into bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// # mtcp::runtime::block_on(async {
    /// let path = std::env::temp_dir().join(format!("mtcp-doc-fs-{}", std::process::id()));
    /// mtcp::fs::write(&path, b"hello").await.unwrap();
    /// assert_eq!(mtcp::fs::read(&path).await.unwrap(), b"hello");
    /// assert_eq!(mtcp::fs::read_to_string(&path).await.unwrap(), "hello");
    /// mtcp::fs::remove_file(&path).await.unwrap();
    /// # });
    /// ```
    read(path) -> Vec<u8>
);
path_fn!(
    /// Reads the whole file into a string (it must be UTF-8).
    read_to_string(path) -> String
);
path_fn!(
    /// Creates a directory.
    create_dir(path) -> ()
);
path_fn!(
    /// Creates a directory and its missing parents.
    create_dir_all(path) -> ()
);
path_fn!(
    /// Removes a file.
    remove_file(path) -> ()
);
path_fn!(
    /// Removes an empty directory.
    remove_dir(path) -> ()
);
path_fn!(
    /// Removes a directory and everything in it.
    remove_dir_all(path) -> ()
);
path_fn!(
    /// Renames a file or directory.
    rename(from, to) -> ()
);
path_fn!(
    /// Copies a file's contents and permissions; returns the bytes copied.
    copy(from, to) -> u64
);
path_fn!(
    /// Creates a hard link `dst` to `src`.
    hard_link(src, dst) -> ()
);
path_fn!(
    /// A path's metadata, following symbolic links.
    metadata(path) -> Metadata
);
path_fn!(
    /// A path's metadata, not following symbolic links.
    symlink_metadata(path) -> Metadata
);
path_fn!(
    /// The absolute path with every link resolved.
    canonicalize(path) -> PathBuf
);
path_fn!(
    /// The target of a symbolic link.
    read_link(path) -> PathBuf
);

/// Whether the path exists (`Err` if that cannot be determined).
///
/// # Errors
/// As [`Path::try_exists`].
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = path.as_ref().to_owned();
    blocking(move || path.try_exists()).await
}

/// Writes `contents` as the whole file, creating or truncating it.
///
/// # Errors
/// As [`std::fs::write`].
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_owned();
    blocking(move || std::fs::write(path, contents)).await
}

/// Sets a path's permissions.
///
/// # Errors
/// As [`std::fs::set_permissions`].
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::set_permissions(path, perm)).await
}

/// The entries of a directory: [`ReadDir::next_entry`] yields them.
///
/// # Errors
/// As [`std::fs::read_dir`].
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let mut dir = mtcp::fs::read_dir(".").await.unwrap();
/// let mut names = Vec::new();
/// while let Some(entry) = dir.next_entry().await.unwrap() {
///     names.push(entry.file_name());
/// }
/// assert!(!names.is_empty());
/// # });
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let inner = blocking(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir { inner })
}

/// A directory's entries (tokio's `ReadDir`).
#[derive(Debug)]
pub struct ReadDir {
    inner: std::fs::ReadDir,
}

impl ReadDir {
    /// The next entry, or `None` at the end.
    ///
    /// # Errors
    /// An I/O error reading the directory.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        self.inner.next().transpose().map(|e| e.map(DirEntry))
    }

    /// Polls for the next entry (it never waits).
    ///
    /// # Errors
    /// An I/O error reading the directory.
    pub fn poll_next_entry(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        Poll::Ready(self.inner.next().transpose().map(|e| e.map(DirEntry)))
    }
}

/// One entry of a [`ReadDir`].
#[derive(Debug)]
pub struct DirEntry(std::fs::DirEntry);

impl DirEntry {
    /// The entry's full path.
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// The entry's file name.
    pub fn file_name(&self) -> std::ffi::OsString {
        self.0.file_name()
    }

    /// The entry's metadata (not following links).
    ///
    /// # Errors
    /// As [`std::fs::DirEntry::metadata`].
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.0.metadata()
    }

    /// The entry's file type.
    ///
    /// # Errors
    /// As [`std::fs::DirEntry::file_type`].
    pub async fn file_type(&self) -> io::Result<std::fs::FileType> {
        self.0.file_type()
    }
}

/// Options to open a [`File`] with (tokio's `OpenOptions`).
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// All options off.
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Writes append to the end.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate to zero length on open.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if missing.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    /// As [`std::fs::OpenOptions::open`].
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let opts = self.0.clone();
        let path = path.as_ref().to_owned();
        let std = blocking(move || opts.open(path)).await?;
        Ok(File { std })
    }
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

/// An open file, as an [`AsyncRead`] + [`AsyncWrite`] + [`AsyncSeek`]
/// (tokio's `File`). Reads, writes and seeks are direct system calls on the
/// core's thread (see the [module docs](self)).
///
/// # Examples
///
/// ```
/// use mtcp::fs::File;
/// use mtcp::io::{AsyncReadExt, AsyncWriteExt};
///
/// # mtcp::runtime::block_on(async {
/// let path = std::env::temp_dir().join(format!("mtcp-doc-file-{}", std::process::id()));
/// let mut f = File::create(&path).await.unwrap();
/// f.write_all(b"line one\n").await.unwrap();
/// f.flush().await.unwrap();
/// let mut s = String::new();
/// File::open(&path).await.unwrap().read_to_string(&mut s).await.unwrap();
/// assert_eq!(s, "line one\n");
/// mtcp::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
pub struct File {
    std: std::fs::File,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("std", &self.std).finish()
    }
}

impl File {
    /// Opens a file for reading.
    ///
    /// # Errors
    /// As [`std::fs::File::open`].
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) a file for writing.
    ///
    /// # Errors
    /// As [`std::fs::File::create`].
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Options to open a file with.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a `std` file.
    pub fn from_std(std: std::fs::File) -> File {
        File { std }
    }

    /// The `std` file back.
    pub async fn into_std(self) -> std::fs::File {
        self.std
    }

    /// Flushes data and metadata to the device.
    ///
    /// # Errors
    /// As [`std::fs::File::sync_all`].
    pub async fn sync_all(&self) -> io::Result<()> {
        self.std.sync_all()
    }

    /// Flushes data to the device.
    ///
    /// # Errors
    /// As [`std::fs::File::sync_data`].
    pub async fn sync_data(&self) -> io::Result<()> {
        self.std.sync_data()
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// # Errors
    /// As [`std::fs::File::set_len`].
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        self.std.set_len(size)
    }

    /// The file's metadata.
    ///
    /// # Errors
    /// As [`std::fs::File::metadata`].
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.std.metadata()
    }
}

impl AsyncRead for File {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        loop {
            match self.std.read(dst) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for File {
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

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.std.flush())
    }
}

impl AsyncSeek for File {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        self.std.seek(position).map(|_| ())
    }

    fn poll_complete(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(self.std.stream_position())
    }
}
