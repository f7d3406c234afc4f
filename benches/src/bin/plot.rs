//! `plot OUT_DIR [FILE...]`: turns `compare --json` lines (from the files,
//! or stdin when none or `-` is given) into SVG charts in OUT_DIR.
//! `plot --markdown [FILE...]` prints them as markdown tables instead.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use benches::plot;

const USAGE: &str =
    "usage: plot OUT_DIR [FILE...]   (JSON lines of `compare --json`; stdin if no FILE)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((dir, files)) = args.split_first() else {
        eprintln!("plot: missing OUT_DIR\n{USAGE}");
        return ExitCode::from(2);
    };
    if dir == "-h" || dir == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
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
    if dir == "--markdown" {
        if measurements.is_empty() {
            eprintln!("plot: no measurements");
            return ExitCode::FAILURE;
        }
        print!("{}", plot::markdown_tables(&measurements));
        return ExitCode::SUCCESS;
    }
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
