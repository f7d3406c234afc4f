//! A small stderr logger for the `log` facade, configured by `RUST_LOG`
//! (default `warn`), that the example programs install as the first thing
//! in `main` ([`init_logger`]). mtcp itself never installs a logger: a
//! library must leave the process-wide logger to the program (so
//! `tracing_subscriber::fmt::init()` or `env_logger::init()` work).
//!
//! `RUST_LOG` takes a global level (`error`, `warn`, `info`, `debug`,
//! `trace`, `off`) and/or `target=level` directives separated by commas,
//! e.g. `RUST_LOG=info,mtcp_stack=debug`; the most specific (longest)
//! matching target prefix wins.

use log::{LevelFilter, Log, Metadata, Record};

#[derive(Debug)]
struct Logger {
    default: LevelFilter,
    directives: Vec<(String, LevelFilter)>,
}

fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

impl Logger {
    fn from_spec(spec: &str) -> Logger {
        let mut default = LevelFilter::Warn;
        let mut directives = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => {
                    if let Some(l) = parse_level(level) {
                        directives.push((target.trim().to_string(), l));
                    }
                }
                None => match parse_level(part) {
                    Some(l) => default = l,
                    // A bare target enables everything for it.
                    None => directives.push((part.to_string(), LevelFilter::Trace)),
                },
            }
        }
        directives.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Logger {
            default,
            directives,
        }
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map_or(self.default, |(_, l)| *l)
    }

    fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, |a, b| a.max(b))
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger from `RUST_LOG` once per process; a logger already
/// installed (by the program or an earlier call) is kept.
pub fn init_logger() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let spec = std::env::var("RUST_LOG").unwrap_or_default();
        let logger = Logger::from_spec(&spec);
        let max = logger.max_level();
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(max);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_specs() {
        let l = Logger::from_spec("");
        assert_eq!(l.level_for("mtcp"), LevelFilter::Warn);
        let l = Logger::from_spec("info,mtcp_stack=debug,mtcp_stack::tcp=trace,junk=nope");
        assert_eq!(l.level_for("mtcp::reactor"), LevelFilter::Info);
        assert_eq!(l.level_for("mtcp_stack::nic"), LevelFilter::Debug);
        assert_eq!(l.level_for("mtcp_stack::tcp::input"), LevelFilter::Trace);
        assert_eq!(l.max_level(), LevelFilter::Trace);
        let l = Logger::from_spec("off");
        assert_eq!(l.level_for("x"), LevelFilter::Off);
    }
}
