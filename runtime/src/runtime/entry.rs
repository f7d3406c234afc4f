//! The entry points: [`Runtime::new`] and [`block_on`] (a runtime from the
//! environment), and what `#[mtcp::main]` and `#[mtcp::test]` expand to.

use std::future::Future;
use std::io;
use std::process::{ExitCode, Termination};

use super::builder::Builder;
use super::runtime::Runtime;

impl Runtime {
    /// A runtime configured from the environment, network included (see
    /// [`Builder::from_env`]), as tokio's `Runtime::new` has I/O enabled.
    ///
    /// # Errors
    ///
    /// A bad `MTCP_*` variable (one line naming it), or a device that
    /// cannot be opened.
    pub fn new() -> io::Result<Runtime> {
        Builder::from_env()?.build()
    }
}

fn is_success(code: ExitCode) -> bool {
    format!("{code:?}") == format!("{:?}", ExitCode::SUCCESS)
}

/// Runs `future` on a new default runtime (one core, on this thread).
///
/// # Panics
///
/// If `future` panics or the thread already runs a runtime.
///
/// # Examples
///
/// ```
/// assert_eq!(mtcp::runtime::block_on(async { 3 }), 3);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    Runtime::new()
        .expect("the default runtime configuration is valid")
        .block_on(future)
}

/// Entry point of `#[mtcp::main]`: runs `main` on `cores` cores (default
/// 1) and returns core 0's output. With one core it runs on the calling
/// thread. With more, each other core's output goes to `report` on that
/// core's thread (the macro passes [`__report`] for `main` and tests, which
/// prints an `Err` like `main` would, and [`__ignore`] otherwise); the
/// process exits with status 1 after the run if any of them failed.
///
/// A core that fails to start prints one line and exits with status 1.
/// The integrator maps `MTCP_*` settings here, in one place.
#[doc(hidden)]
pub fn __main_entry<M, F>(cores: Option<usize>, main: M, report: fn(F::Output) -> bool) -> F::Output
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let builder = match entry_builder(cores) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    match run_entry(builder, main, report) {
        Ok((v, failures)) => {
            if !failures.is_empty() {
                eprintln!("mtcp: the main function failed on cores {failures:?}");
                std::process::exit(1);
            }
            v
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// Entry point of `#[mtcp::test]`: like [`__main_entry`], but every failure
/// panics (failing the test).
#[doc(hidden)]
#[track_caller]
pub fn __test_entry<M, F>(cores: Option<usize>, main: M, report: fn(F::Output) -> bool) -> F::Output
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let builder = entry_builder(cores).unwrap_or_else(|e| panic!("{e}"));
    match run_entry(builder, main, report) {
        Ok((v, failures)) => {
            assert!(
                failures.is_empty(),
                "mtcp: the test body failed on cores {failures:?}"
            );
            v
        }
        Err(e) => panic!("{e}"),
    }
}

/// The builder of the entry macros: the environment (`MTCP_*`), with the
/// macro's `cores` winning over `MTCP_CORES`.
fn entry_builder(cores: Option<usize>) -> io::Result<Builder> {
    let builder = Builder::from_env()?;
    Ok(match cores {
        Some(n) => builder.cores(n),
        None => builder,
    })
}

/// Reports a main or test output as `main` would (an `Err` is printed);
/// false if it failed.
#[doc(hidden)]
pub fn __report<T: Termination>(output: T) -> bool {
    is_success(output.report())
}

/// Drops an output that has no success or failure.
#[doc(hidden)]
pub fn __ignore<T>(output: T) -> bool {
    drop(output);
    true
}

fn run_entry<M, F>(
    builder: Builder,
    main: M,
    report: fn(F::Output) -> bool,
) -> io::Result<(F::Output, Vec<usize>)>
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let rt = builder.build()?;
    if rt.cores() == 1 {
        return rt.try_block_on(main()).map(|v| (v, Vec::new()));
    }
    rt.shared.main_on_cores(main, report)
}
