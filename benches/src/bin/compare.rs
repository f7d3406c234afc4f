//! `compare SCENARIO [options]`: runs a benchmark scenario on mtcp, tokio,
//! monoio and smoltcp and prints one JSON line per system (`--json`) or a
//! markdown table.
//! See `compare --help` and docs/benchmarks.md.

use std::process::ExitCode;

use benches::cli::{self, Command};
use benches::report::{self, Outcome};
use benches::system;
use benches::tokio_idle;

fn main() -> ExitCode {
    let command = match cli::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("compare: {e}\n\n{}", cli::usage());
            return ExitCode::from(2);
        }
    };
    let options = match command {
        Command::Help => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Command::ServeTokioIdle { core, size } => {
            return helper_exit("idle server", tokio_idle::serve_idle(core, size));
        }
        Command::HoldTokioIdle {
            core,
            port,
            count,
            index,
        } => {
            return helper_exit(
                "idle client",
                tokio_idle::hold_idle(core, port, count, index),
            );
        }
        Command::Run(options) => options,
    };
    let explicit = options.systems.is_some();
    let systems = match system::select(system::all_systems(), options.systems.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for config in options.configs() {
        let round = system::compare(&systems, &config, options.rounds, &mut |what| {
            eprintln!("compare: running {what}")
        });
        for outcome in round {
            // A skipped system is listed once, not once per connection count.
            if let Outcome::Skipped { system, .. } = &outcome {
                if outcomes
                    .iter()
                    .any(|o| o == &outcome || o.system() == system)
                {
                    continue;
                }
            }
            if options.json {
                match &outcome {
                    Outcome::Ran(m) => println!("{}", m.to_json_line()),
                    other => eprintln!("compare: {}", other.note().unwrap_or_default()),
                }
            }
            outcomes.push(outcome);
        }
    }
    if !options.json {
        print!("{}", report::markdown(options.scenario, &outcomes));
    }
    let failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. }));
    let asked_but_skipped = explicit
        && outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Skipped { .. }));
    let none_ran = !outcomes.iter().any(|o| matches!(o, Outcome::Ran(_)));
    if failed || asked_but_skipped || none_ran {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn helper_exit(what: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {what}: {e}");
            ExitCode::FAILURE
        }
    }
}
