//! Command-line parsing for the `compare` binary, with clap.
//!
//! ```text
//! compare SCENARIO [--seconds N] [--json] [--conns N[,N...]] [--size BYTES]
//!         [--cores N] [--systems mtcp,tokio,monoio,smoltcp] [--rounds N]
//!         [--busy-poll | --adaptive] [--idle-conns N | --million]
//! ```
//!
//! Options take their value as the next argument or after `=`
//! (`--seconds 3`, `--seconds=3`); a repeated option keeps its last value.
//! clap does the parsing; [`parse_args`] turns its errors into [`CliError`]s,
//! whose messages name the option and the expected form, and then checks
//! what clap cannot (options that exclude each other or do not apply to the
//! scenario).

use std::fmt;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use crate::scenario::{PollMode, Scenario, ScenarioConfig, DEFAULT_IDLE_CONNS, MILLION_IDLE_CONNS};

/// The scenarios, for the help text.
const SCENARIOS: &str = "\
scenarios:
  echo      request/response of --size bytes on --conns persistent connections
  connect   connect, one request/response, close (one connection per transaction)
  bulk      one stream, --size byte writes; reports Gbit/s
  idle      memory per established idle connection
  udp       request/response of --size byte datagrams on --conns sockets;
            reports lost datagrams (no echo within 100 ms) too";

/// The command line as clap sees it; [`parse_args`] checks it further.
#[derive(Debug, Parser)]
#[command(
    name = "compare",
    about = "Runs a benchmark scenario on mtcp, tokio, monoio and smoltcp, alternating them.",
    override_usage = "compare SCENARIO [options]",
    after_help = SCENARIOS,
    args_override_self = true,
    disable_version_flag = true
)]
struct Args {
    /// The scenario to run (see below)
    #[arg(value_name = "SCENARIO", value_parser = scenario_arg)]
    scenario: Option<Scenario>,
    /// Measured seconds per run, warm-up of 0.5 s excluded [default: 5]
    #[arg(long, value_name = "N", value_parser = seconds_arg, allow_hyphen_values = true)]
    seconds: Option<Duration>,
    /// One JSON object per line per system instead of a markdown table
    #[arg(long)]
    json: bool,
    /// Connections (echo 50, connect: client loops 8, udp: sockets 50); a list runs a sweep
    #[arg(long, value_name = "N[,N...]", value_parser = conns_arg, allow_hyphen_values = true)]
    conns: Option<Counts>,
    /// Request/response size (default 64; bulk: write size, default 65536)
    #[arg(long, value_name = "BYTES", value_parser = size_arg, allow_hyphen_values = true)]
    size: Option<usize>,
    /// Cores per side: server and client get N cores each [default: 1]
    #[arg(long, value_name = "N", value_parser = cores_arg, allow_hyphen_values = true)]
    cores: Option<usize>,
    /// Systems to compare [default: all: mtcp,tokio,monoio,smoltcp]
    #[arg(long, value_name = "a,b", value_parser = systems_arg, allow_hyphen_values = true)]
    systems: Option<Names>,
    /// Alternate the systems N times and report the median [default: 1]
    #[arg(long, value_name = "N", value_parser = rounds_arg, allow_hyphen_values = true)]
    rounds: Option<usize>,
    /// Event loops never park (default)
    #[arg(long)]
    busy_poll: bool,
    /// Event loops spin briefly, then park
    #[arg(long)]
    adaptive: bool,
    /// Connections opened by `idle` [default: 100000]
    #[arg(long, value_name = "N", value_parser = idle_conns_arg, allow_hyphen_values = true)]
    idle_conns: Option<usize>,
    /// `idle` with 1000000 connections
    #[arg(long)]
    million: bool,
    /// Internal: serve idle tokio connections (`CORE,SIZE`).
    #[arg(long, hide = true, value_parser = serve_arg, allow_hyphen_values = true)]
    serve_tokio_idle: Option<(usize, usize)>,
    /// Internal: hold idle tokio connections (`CORE,PORT,COUNT,INDEX`).
    #[arg(long, hide = true, value_parser = hold_arg, allow_hyphen_values = true)]
    hold_tokio_idle: Option<Hold>,
}

/// The value of `--conns`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts(Vec<usize>);

/// The value of `--systems`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names(Vec<String>);

/// The value of `--hold-tokio-idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    core: usize,
    port: u16,
    count: usize,
    index: usize,
}

/// The help text printed by `--help` and after an error.
pub fn usage() -> String {
    Args::command().render_help().to_string()
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a comparison.
    Run(Options),
    /// Print [`usage`] and exit successfully.
    Help,
    /// Internal: serve idle tokio connections in this (child) process, for
    /// the `idle` scenario's memory measurement. Not shown in the usage.
    ServeTokioIdle {
        /// The core to pin the server thread to.
        core: usize,
        /// The size of each connection's read buffer.
        size: usize,
    },
    /// Internal: open and hold idle tokio connections in this (child)
    /// process, for the `idle` scenario. Not shown in the usage.
    HoldTokioIdle {
        /// The core to pin the client thread to.
        core: usize,
        /// The server's loopback port.
        port: u16,
        /// Connections to open.
        count: usize,
        /// This client's index, which picks its source addresses.
        index: usize,
    },
}

/// A parsed `compare` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The scenario to run.
    pub scenario: Scenario,
    /// Measured time per run, warm-up excluded.
    pub duration: Duration,
    /// JSON lines instead of a markdown table.
    pub json: bool,
    /// Connection counts to run, in order (one run per value).
    pub conns: Vec<usize>,
    /// Request/response (or bulk write) size in bytes.
    pub size: usize,
    /// Cores per side.
    pub cores: usize,
    /// The systems asked for by name; `None` means every system.
    pub systems: Option<Vec<String>>,
    /// How many times the systems are alternated; the median is reported.
    pub rounds: usize,
    /// Event loop waiting mode.
    pub poll: PollMode,
}

impl Options {
    /// One [`ScenarioConfig`] per connection count, in order.
    pub fn configs(&self) -> Vec<ScenarioConfig> {
        self.conns
            .iter()
            .map(|&conns| {
                let mut config = ScenarioConfig::new(self.scenario);
                config.duration = self.duration;
                config.conns = conns;
                config.size = self.size;
                config.cores = self.cores;
                config.poll = self.poll;
                config
            })
            .collect()
    }
}

/// Why a command line was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// No scenario was given.
    MissingScenario,
    /// The scenario name is not one of the known ones.
    UnknownScenario(String),
    /// An argument that is neither a scenario nor a known option.
    UnknownArgument(String),
    /// A second positional argument.
    ExtraArgument(String),
    /// An option that needs a value came last.
    MissingValue(&'static str),
    /// An option value did not parse.
    BadValue {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A flag that takes no value was given one (`--json=1`).
    UnexpectedValue(&'static str),
    /// Two options that exclude each other.
    Conflict(&'static str, &'static str),
    /// An option that does not apply to the scenario.
    NotForScenario {
        /// The option.
        option: &'static str,
        /// The scenario.
        scenario: Scenario,
        /// What to use instead.
        hint: &'static str,
    },
    /// Any other error clap found, in clap's words.
    Other(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::MissingScenario => {
                write!(
                    f,
                    "missing SCENARIO (one of echo, connect, bulk, idle, udp)"
                )
            }
            CliError::UnknownScenario(s) => write!(
                f,
                "unknown scenario `{s}`, expected one of echo, connect, bulk, idle, udp"
            ),
            CliError::UnknownArgument(a) => write!(f, "unknown option `{a}`"),
            CliError::ExtraArgument(a) => {
                write!(f, "unexpected argument `{a}`: only one SCENARIO is taken")
            }
            CliError::MissingValue(o) => write!(f, "option `{o}` needs a value"),
            CliError::BadValue {
                option,
                value,
                expected,
            } => write!(f, "option `{option}`: `{value}` is not {expected}"),
            CliError::UnexpectedValue(o) => write!(f, "option `{o}` takes no value"),
            CliError::Conflict(a, b) => write!(f, "options `{a}` and `{b}` exclude each other"),
            CliError::NotForScenario {
                option,
                scenario,
                hint,
            } => write!(
                f,
                "option `{option}` does not apply to `{scenario}`: {hint}"
            ),
            CliError::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

/// The options of [`Args`], for naming them in errors.
const OPTIONS: [&str; 14] = [
    "--seconds",
    "--json",
    "--conns",
    "--size",
    "--cores",
    "--systems",
    "--rounds",
    "--busy-poll",
    "--adaptive",
    "--idle-conns",
    "--million",
    "--serve-tokio-idle",
    "--hold-tokio-idle",
    "--help",
];

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A [`CliError`] naming the offending argument.
pub fn parse_args<I>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = String>,
{
    let args = match Args::try_parse_from(std::iter::once("compare".to_string()).chain(args)) {
        Ok(args) => args,
        Err(e) if e.kind() == ErrorKind::DisplayHelp => return Ok(Command::Help),
        Err(e) => return Err(from_clap(e)),
    };
    if let Some((core, size)) = args.serve_tokio_idle {
        return Ok(Command::ServeTokioIdle { core, size });
    }
    if let Some(h) = args.hold_tokio_idle {
        return Ok(Command::HoldTokioIdle {
            core: h.core,
            port: h.port,
            count: h.count,
            index: h.index,
        });
    }
    let scenario = args.scenario.ok_or(CliError::MissingScenario)?;
    if args.busy_poll && args.adaptive {
        return Err(CliError::Conflict("--busy-poll", "--adaptive"));
    }
    if args.million && args.idle_conns.is_some() {
        return Err(CliError::Conflict("--million", "--idle-conns"));
    }
    if scenario != Scenario::Idle {
        if args.million {
            return Err(not_for("--million", scenario, "it only applies to idle"));
        }
        if args.idle_conns.is_some() {
            return Err(not_for("--idle-conns", scenario, "use --conns"));
        }
    }
    let conns = args.conns.map(|c| c.0);
    let conns = match scenario {
        Scenario::Idle => {
            if conns.is_some() {
                return Err(not_for(
                    "--conns",
                    scenario,
                    "use --idle-conns or --million",
                ));
            }
            let n = if args.million {
                MILLION_IDLE_CONNS
            } else {
                args.idle_conns.unwrap_or(DEFAULT_IDLE_CONNS)
            };
            vec![n]
        }
        Scenario::Bulk => match conns {
            Some(c) if c != [1] => {
                return Err(not_for("--conns", scenario, "bulk uses one connection"))
            }
            _ => vec![1],
        },
        _ => conns.unwrap_or_else(|| vec![scenario.default_conns()]),
    };
    let size = args
        .size
        .unwrap_or_else(|| ScenarioConfig::new(scenario).size);
    if scenario == Scenario::Udp && size > MAX_DATAGRAM {
        return Err(CliError::BadValue {
            option: "--size",
            value: size.to_string(),
            expected: "at most 65507 bytes for udp (one datagram)",
        });
    }
    Ok(Command::Run(Options {
        scenario,
        duration: args.seconds.unwrap_or(Duration::from_secs(5)),
        json: args.json,
        conns,
        size,
        cores: args.cores.unwrap_or(1),
        systems: args.systems.map(|n| n.0),
        rounds: args.rounds.unwrap_or(1),
        poll: if args.adaptive {
            PollMode::Adaptive
        } else {
            PollMode::BusyPoll
        },
    }))
}

/// The largest UDP payload in one IPv4 datagram.
const MAX_DATAGRAM: usize = 65_507;

/// Turns a clap error into ours: value errors come from our parsers
/// (the [`CliError`] is clap's source), the rest is matched by kind.
fn from_clap(e: clap::Error) -> CliError {
    if let Some(ours) = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<CliError>()) {
        return ours.clone();
    }
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    // clap names an option with its value name (`--seconds <N>`).
    let option = || {
        context(ContextKind::InvalidArg).and_then(|a| {
            let name = a.split([' ', '=']).next().unwrap_or_default().to_string();
            OPTIONS.into_iter().find(|o| *o == name)
        })
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            if let Some(arg) = context(ContextKind::InvalidArg) {
                return if arg.starts_with('-') {
                    CliError::UnknownArgument(arg)
                } else {
                    CliError::ExtraArgument(arg)
                };
            }
        }
        ErrorKind::InvalidValue if context(ContextKind::InvalidValue).as_deref() == Some("") => {
            if let Some(o) = option() {
                return CliError::MissingValue(o);
            }
        }
        ErrorKind::TooManyValues => {
            if let Some(o) = option() {
                return CliError::UnexpectedValue(o);
            }
        }
        _ => {}
    }
    CliError::Other(e.render().to_string().trim_end().to_string())
}

fn not_for(option: &'static str, scenario: Scenario, hint: &'static str) -> CliError {
    CliError::NotForScenario {
        option,
        scenario,
        hint,
    }
}

fn bad(option: &'static str, value: &str, expected: &'static str) -> CliError {
    CliError::BadValue {
        option,
        value: value.to_string(),
        expected,
    }
}

/// What a count must be.
const POSITIVE: &str = "a positive integer (or a comma-separated list for --conns)";

/// A positive integer.
fn parse_count(option: &'static str, text: &str, whole: &str) -> Result<usize, CliError> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(option, whole, POSITIVE)),
    }
}

fn scenario_arg(text: &str) -> Result<Scenario, CliError> {
    Scenario::from_name(text).ok_or_else(|| CliError::UnknownScenario(text.to_string()))
}

/// Positive seconds, fractions allowed, at most a day.
fn seconds_arg(text: &str) -> Result<Duration, CliError> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(bad(
            "--seconds",
            text,
            "a number of seconds greater than 0 (at most 86400)",
        )),
    }
}

fn conns_arg(text: &str) -> Result<Counts, CliError> {
    text.split(',')
        .map(|v| parse_count("--conns", v, text))
        .collect::<Result<_, _>>()
        .map(Counts)
}

fn size_arg(text: &str) -> Result<usize, CliError> {
    parse_count("--size", text, text)
}

fn cores_arg(text: &str) -> Result<usize, CliError> {
    parse_count("--cores", text, text)
}

fn rounds_arg(text: &str) -> Result<usize, CliError> {
    parse_count("--rounds", text, text)
}

fn idle_conns_arg(text: &str) -> Result<usize, CliError> {
    parse_count("--idle-conns", text, text)
}

fn systems_arg(text: &str) -> Result<Names, CliError> {
    let list: Vec<String> = text.split(',').map(str::to_string).collect();
    if list.iter().any(String::is_empty) {
        return Err(bad(
            "--systems",
            text,
            "a comma-separated list of system names",
        ));
    }
    Ok(Names(list))
}

/// `--serve-tokio-idle CORE,SIZE` (internal).
fn serve_arg(text: &str) -> Result<(usize, usize), CliError> {
    let option = "--serve-tokio-idle";
    let (core, size) = text
        .split_once(',')
        .ok_or_else(|| bad(option, text, "CORE,SIZE"))?;
    let core = core.parse().map_err(|_| bad(option, text, "CORE,SIZE"))?;
    Ok((core, parse_count(option, size, text)?))
}

/// `--hold-tokio-idle CORE,PORT,COUNT,INDEX` (internal).
fn hold_arg(text: &str) -> Result<Hold, CliError> {
    let e = || bad("--hold-tokio-idle", text, "CORE,PORT,COUNT,INDEX");
    let fields: Vec<&str> = text.split(',').collect();
    let [core, port, count, index] = fields[..] else {
        return Err(e());
    };
    Ok(Hold {
        core: core.parse().map_err(|_| e())?,
        port: port.parse().map_err(|_| e())?,
        count: count.parse().map_err(|_| e())?,
        index: index.parse().map_err(|_| e())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CliError> {
        parse_args(line.split_whitespace().map(str::to_string))
    }

    fn run(line: &str) -> Options {
        match parse(line) {
            Ok(Command::Run(o)) => o,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run("echo");
        assert_eq!(o.scenario, Scenario::Echo);
        assert_eq!(o.duration, Duration::from_secs(5));
        assert!(!o.json);
        assert_eq!(o.conns, vec![50]);
        assert_eq!(o.size, 64);
        assert_eq!(o.cores, 1);
        assert_eq!(o.systems, None);
        assert_eq!(o.rounds, 1);
        assert_eq!(o.poll, PollMode::BusyPoll);
        assert_eq!(run("connect").conns, vec![8]);
        assert_eq!(run("bulk").size, 65536);
        assert_eq!(run("bulk").conns, vec![1]);
        assert_eq!(run("idle").conns, vec![100_000]);
    }

    #[test]
    fn every_option() {
        let o = run(
            "echo --seconds 3 --json --conns 1,10,50 --size 128 --cores 2 \
                     --systems tokio,mtcp --rounds 3 --adaptive",
        );
        assert_eq!(o.duration, Duration::from_secs(3));
        assert!(o.json);
        assert_eq!(o.conns, vec![1, 10, 50]);
        assert_eq!(o.size, 128);
        assert_eq!(o.cores, 2);
        assert_eq!(o.systems, Some(vec!["tokio".into(), "mtcp".into()]));
        assert_eq!(o.rounds, 3);
        assert_eq!(o.poll, PollMode::Adaptive);
        let configs = o.configs();
        assert_eq!(configs.len(), 3);
        assert_eq!(configs[2].conns, 50);
        assert_eq!(configs[0].size, 128);
        assert_eq!(configs[0].cores, 2);
    }

    #[test]
    fn option_order_and_equals_form() {
        let o = run("--json --seconds=0.5 connect --conns=4");
        assert_eq!(o.scenario, Scenario::Connect);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.conns, vec![4]);
        assert!(o.json);
    }

    #[test]
    fn idle_options() {
        assert_eq!(run("idle --idle-conns 2000").conns, vec![2000]);
        assert_eq!(run("idle --million").conns, vec![1_000_000]);
        assert_eq!(run("idle --busy-poll").poll, PollMode::BusyPoll);
    }

    #[test]
    fn help() {
        assert_eq!(parse("--help"), Ok(Command::Help));
        assert_eq!(parse("echo -h"), Ok(Command::Help));
    }

    #[test]
    fn hidden_idle_server_mode() {
        assert_eq!(
            parse("--serve-tokio-idle 0,64"),
            Ok(Command::ServeTokioIdle { core: 0, size: 64 })
        );
        assert!(matches!(
            parse("--serve-tokio-idle 0"),
            Err(CliError::BadValue { .. })
        ));
        assert_eq!(
            parse("--hold-tokio-idle 1,4000,20000,3"),
            Ok(Command::HoldTokioIdle {
                core: 1,
                port: 4000,
                count: 20000,
                index: 3
            })
        );
        for bad in ["1,2,3", "1,2,3,4,5", "1,70000,3,4", "a,2,3,4"] {
            assert!(
                matches!(
                    parse(&format!("--hold-tokio-idle {bad}")),
                    Err(CliError::BadValue { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(parse(""), Err(CliError::MissingScenario));
        assert_eq!(parse("--json"), Err(CliError::MissingScenario));
        assert_eq!(parse("ping"), Err(CliError::UnknownScenario("ping".into())));
        assert_eq!(
            parse("echo echo"),
            Err(CliError::ExtraArgument("echo".into()))
        );
        assert_eq!(
            parse("echo --verbose"),
            Err(CliError::UnknownArgument("--verbose".into()))
        );
        assert_eq!(
            parse("echo -v"),
            Err(CliError::UnknownArgument("-v".into()))
        );
        assert_eq!(
            parse("echo --seconds"),
            Err(CliError::MissingValue("--seconds"))
        );
        assert_eq!(
            parse("echo --json=yes"),
            Err(CliError::UnexpectedValue("--json"))
        );
        for bad in [
            "echo --seconds 0",
            "echo --seconds -1",
            "echo --seconds abc",
            "echo --seconds inf",
            "echo --conns 0",
            "echo --conns 1,,2",
            "echo --conns x",
            "echo --size -5",
            "echo --cores 0",
            "echo --rounds 1.5",
            "echo --systems tokio,",
            "idle --idle-conns 0",
        ] {
            assert!(
                matches!(parse(bad), Err(CliError::BadValue { .. })),
                "{bad}: {:?}",
                parse(bad)
            );
        }
        assert_eq!(
            parse("echo --busy-poll --adaptive"),
            Err(CliError::Conflict("--busy-poll", "--adaptive"))
        );
        assert_eq!(
            parse("idle --million --idle-conns 5"),
            Err(CliError::Conflict("--million", "--idle-conns"))
        );
        for bad in [
            "echo --million",
            "echo --idle-conns 5",
            "idle --conns 5",
            "bulk --conns 4",
        ] {
            assert!(
                matches!(parse(bad), Err(CliError::NotForScenario { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_read_well() {
        let e = parse("echo --seconds abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "option `--seconds`: `abc` is not a number of seconds greater than 0 (at most 86400)"
        );
        assert_eq!(
            parse("ping").unwrap_err().to_string(),
            "unknown scenario `ping`, expected one of echo, connect, bulk, idle, udp"
        );
        assert_eq!(
            parse("echo --conns 1,,2").unwrap_err().to_string(),
            "option `--conns`: `1,,2` is not a positive integer (or a comma-separated list for --conns)"
        );
        assert_eq!(
            parse("udp --size 65508").unwrap_err().to_string(),
            "option `--size`: `65508` is not at most 65507 bytes for udp (one datagram)"
        );
    }

    #[test]
    fn udp_options() {
        let o = run("udp");
        assert_eq!(o.scenario, Scenario::Udp);
        assert_eq!((o.conns.clone(), o.size), (vec![50], 64));
        let o = run("udp --conns 1,100 --size 65507 --cores 2");
        assert_eq!((o.conns.clone(), o.size, o.cores), (vec![1, 100], 65507, 2));
        assert!(matches!(
            parse("udp --million"),
            Err(CliError::NotForScenario { .. })
        ));
    }

    #[test]
    fn a_repeated_option_keeps_its_last_value() {
        let o = run("echo --seconds 1 --conns 5 --seconds 2 --conns 7");
        assert_eq!(o.duration, Duration::from_secs(2));
        assert_eq!(o.conns, vec![7]);
    }

    #[test]
    fn help_lists_every_option_and_scenario() {
        let help = usage();
        assert!(help.contains("compare SCENARIO [options]"), "{help}");
        for word in [
            "--seconds",
            "--json",
            "--conns",
            "--size",
            "--cores",
            "--systems",
            "--rounds",
            "--busy-poll",
            "--adaptive",
            "--idle-conns",
            "--million",
            "echo",
            "connect",
            "bulk",
            "idle",
            "udp",
        ] {
            assert!(help.contains(word), "{word} missing in\n{help}");
        }
        // The internal helper modes stay out of it.
        assert!(!help.contains("tokio-idle"), "{help}");
    }
}
