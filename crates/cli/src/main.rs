//! `trailmark`: thin binary over the library crates. Data goes to stdout; progress, logs and
//! errors to stderr. Exit codes (stable, documented in README.md):
//! 0 ok · 1 verification failed · 2 bad input or usage · 3 storage or I/O error.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod datadir;
mod error;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error::CliError::BrokenPipe) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trailmark: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
