//! Command-line parsing for the `compare` binary (hand-rolled, no clap).
//!
//! ```text
//! compare SCENARIO [--seconds N] [--json] [--conns N[,N...]] [--size BYTES]
//!         [--cores N] [--systems mtcp,tokio] [--rounds N]
//!         [--busy-poll | --adaptive] [--idle-conns N | --million]
//! ```
//!
//! Options take their value as the next argument or after `=`
//! (`--seconds 3`, `--seconds=3`).

use std::fmt;
use std::time::Duration;

use crate::scenario::{PollMode, Scenario, ScenarioConfig, DEFAULT_IDLE_CONNS, MILLION_IDLE_CONNS};

/// The usage text printed by `--help` and after an error.
pub const USAGE: &str = "\
usage: compare SCENARIO [options]

scenarios:
  echo      request/response of --size bytes on --conns persistent connections
  connect   connect, one request/response, close (one connection per transaction)
  bulk      one stream, --size byte writes; reports Gbit/s
  idle      memory per established idle connection

options:
  --seconds N          measured seconds per run, warm-up of 0.5 s excluded (default 5)
  --json               one JSON object per line per system instead of a markdown table
  --conns N[,N...]     connections (echo: persistent connections, default 50;
                       connect: parallel client loops, default 8); a list runs a sweep
  --size BYTES         request/response size (default 64; bulk: write size, default 65536)
  --cores N            cores per side: server and client get N cores each (default 1)
  --systems a,b        systems to compare (default: all: mtcp,tokio)
  --rounds N           alternate the systems N times and report the median (default 1)
  --busy-poll          event loops never park (default)
  --adaptive           event loops spin briefly, then park
  --idle-conns N       connections opened by `idle` (default 100000)
  --million            `idle` with 1000000 connections
  -h, --help           this text
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a comparison.
    Run(Options),
    /// Print [`USAGE`] and exit successfully.
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
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::MissingScenario => {
                write!(f, "missing SCENARIO (one of echo, connect, bulk, idle)")
            }
            CliError::UnknownScenario(s) => write!(
                f,
                "unknown scenario `{s}`, expected one of echo, connect, bulk, idle"
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
        }
    }
}

impl std::error::Error for CliError {}

/// The options that take a value, by name.
const VALUE_OPTIONS: [&str; 9] = [
    "--seconds",
    "--conns",
    "--size",
    "--cores",
    "--systems",
    "--rounds",
    "--idle-conns",
    "--serve-tokio-idle",
    "--hold-tokio-idle",
];

/// The flags (options without a value), by name.
const FLAGS: [&str; 5] = ["--json", "--busy-poll", "--adaptive", "--million", "--help"];

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A [`CliError`] naming the offending argument.
pub fn parse_args<I>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = String>,
{
    let mut args = args.into_iter();
    let mut scenario: Option<Scenario> = None;
    let mut duration = Duration::from_secs(5);
    let mut json = false;
    let mut conns: Option<Vec<usize>> = None;
    let mut size: Option<usize> = None;
    let mut cores = 1;
    let mut systems: Option<Vec<String>> = None;
    let mut rounds = 1;
    let mut busy_poll = false;
    let mut adaptive = false;
    let mut idle_conns: Option<usize> = None;
    let mut million = false;
    let mut serve: Option<(usize, usize)> = None;
    let mut hold: Option<Command> = None;

    while let Some(arg) = args.next() {
        if arg == "-h" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") || arg == "--" {
            if arg.starts_with('-') {
                return Err(CliError::UnknownArgument(arg));
            }
            if scenario.is_some() {
                return Err(CliError::ExtraArgument(arg));
            }
            scenario =
                Some(Scenario::from_name(&arg).ok_or(CliError::UnknownScenario(arg.clone()))?);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if let Some(&flag) = FLAGS.iter().find(|&&f| f == name) {
            if inline.is_some() {
                return Err(CliError::UnexpectedValue(flag));
            }
            match flag {
                "--json" => json = true,
                "--busy-poll" => busy_poll = true,
                "--adaptive" => adaptive = true,
                "--million" => million = true,
                _ => return Ok(Command::Help),
            }
            continue;
        }
        let Some(&option) = VALUE_OPTIONS.iter().find(|&&o| o == name) else {
            return Err(CliError::UnknownArgument(arg));
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or(CliError::MissingValue(option))?,
        };
        match option {
            "--seconds" => duration = parse_seconds(option, &value)?,
            "--conns" => {
                conns = Some(
                    value
                        .split(',')
                        .map(|v| parse_count(option, v, &value))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--size" => size = Some(parse_count(option, &value, &value)?),
            "--cores" => cores = parse_count(option, &value, &value)?,
            "--rounds" => rounds = parse_count(option, &value, &value)?,
            "--idle-conns" => idle_conns = Some(parse_count(option, &value, &value)?),
            "--systems" => {
                let list: Vec<String> = value.split(',').map(str::to_string).collect();
                if list.iter().any(|s| s.is_empty()) {
                    return Err(CliError::BadValue {
                        option,
                        value,
                        expected: "a comma-separated list of system names",
                    });
                }
                systems = Some(list);
            }
            "--hold-tokio-idle" => {
                // `--hold-tokio-idle CORE,PORT,COUNT,INDEX` (internal).
                let bad = || CliError::BadValue {
                    option,
                    value: value.clone(),
                    expected: "CORE,PORT,COUNT,INDEX",
                };
                let fields: Vec<&str> = value.split(',').collect();
                let [core, port, count, index] = fields[..] else {
                    return Err(bad());
                };
                hold = Some(Command::HoldTokioIdle {
                    core: core.parse().map_err(|_| bad())?,
                    port: port.parse().map_err(|_| bad())?,
                    count: count.parse().map_err(|_| bad())?,
                    index: index.parse().map_err(|_| bad())?,
                });
            }
            _ => {
                // `--serve-tokio-idle CORE,SIZE` (internal).
                let bad = || CliError::BadValue {
                    option,
                    value: value.clone(),
                    expected: "CORE,SIZE",
                };
                let (core, sz) = value.split_once(',').ok_or_else(bad)?;
                let core = core.parse().map_err(|_| bad())?;
                let sz = parse_count(option, sz, &value)?;
                serve = Some((core, sz));
            }
        }
    }

    if let Some((core, size)) = serve {
        return Ok(Command::ServeTokioIdle { core, size });
    }
    if let Some(hold) = hold {
        return Ok(hold);
    }
    let scenario = scenario.ok_or(CliError::MissingScenario)?;
    if busy_poll && adaptive {
        return Err(CliError::Conflict("--busy-poll", "--adaptive"));
    }
    if million && idle_conns.is_some() {
        return Err(CliError::Conflict("--million", "--idle-conns"));
    }
    if scenario != Scenario::Idle {
        if million {
            return Err(not_for("--million", scenario, "it only applies to idle"));
        }
        if idle_conns.is_some() {
            return Err(not_for("--idle-conns", scenario, "use --conns"));
        }
    }
    let conns = match scenario {
        Scenario::Idle => {
            if conns.is_some() {
                return Err(not_for(
                    "--conns",
                    scenario,
                    "use --idle-conns or --million",
                ));
            }
            let n = if million {
                MILLION_IDLE_CONNS
            } else {
                idle_conns.unwrap_or(DEFAULT_IDLE_CONNS)
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
    let size = size.unwrap_or_else(|| ScenarioConfig::new(scenario).size);
    Ok(Command::Run(Options {
        scenario,
        duration,
        json,
        conns,
        size,
        cores,
        systems,
        rounds,
        poll: if adaptive {
            PollMode::Adaptive
        } else {
            PollMode::BusyPoll
        },
    }))
}

fn not_for(option: &'static str, scenario: Scenario, hint: &'static str) -> CliError {
    CliError::NotForScenario {
        option,
        scenario,
        hint,
    }
}

/// A positive integer.
fn parse_count(option: &'static str, text: &str, whole: &str) -> Result<usize, CliError> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(CliError::BadValue {
            option,
            value: whole.to_string(),
            expected: "a positive integer (or a comma-separated list for --conns)",
        }),
    }
}

/// Positive seconds, fractions allowed, at most a day.
fn parse_seconds(option: &'static str, text: &str) -> Result<Duration, CliError> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(CliError::BadValue {
            option,
            value: text.to_string(),
            expected: "a number of seconds greater than 0 (at most 86400)",
        }),
    }
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
            "unknown scenario `ping`, expected one of echo, connect, bulk, idle"
        );
    }
}
