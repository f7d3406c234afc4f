//! `plot OUT_DIR [FILE...]`: turns `compare --json` lines (from the files,
//! or stdin when none or `-` is given) into SVG charts in OUT_DIR.
//! `plot --markdown [FILE...]` prints them as markdown tables instead.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use benches::plot;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

/// Turns the JSON lines of `compare --json` into SVG charts in OUT_DIR, or
/// prints them as markdown tables (`--markdown`).
#[derive(Debug, Parser)]
#[command(
    name = "plot",
    override_usage = "plot OUT_DIR [FILE...]\n       plot --markdown [FILE...]",
    disable_version_flag = true
)]
struct Args {
    /// Print markdown tables instead of writing charts
    #[arg(long)]
    markdown: bool,
    /// OUT_DIR (not with --markdown), then files of JSON lines (stdin when
    /// none or `-` is given)
    #[arg(value_name = "OUT_DIR | FILE")]
    paths: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (dir, files) = if args.markdown {
        (None, &args.paths[..])
    } else {
        let Some((dir, files)) = args.paths.split_first() else {
            Args::command()
                .error(ErrorKind::MissingRequiredArgument, "missing OUT_DIR")
                .exit()
        };
        (Some(dir), files)
    };
    let mut text = String::new();
    if files.is_empty() || files == ["-"] {
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("plot: stdin: {e}");
            return ExitCode::FAILURE;
        }
    } else {
        for f in files {
            match std::fs::read_to_string(f) {
                Ok(t) => {
                    text.push_str(&t);
                    text.push('\n');
                }
                Err(e) => {
                    eprintln!("plot: {f}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let (measurements, bad) = plot::parse_lines(&text);
    for b in &bad {
        eprintln!("plot: skipped {b}");
    }
    let Some(dir) = dir else {
        if measurements.is_empty() {
            eprintln!("plot: no measurements");
            return ExitCode::FAILURE;
        }
        print!("{}", plot::markdown_tables(&measurements));
        return ExitCode::SUCCESS;
    };
    match plot::write_all(&measurements, Path::new(dir)) {
        Ok(written) => {
            for p in written {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plot: {e}");
            ExitCode::FAILURE
        }
    }
}
