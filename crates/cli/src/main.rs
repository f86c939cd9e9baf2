//! `trailmark`: thin binary over the library crates. Data goes to stdout; progress, logs and
//! errors to stderr. Exit codes (stable, documented in README.md):
//! 0 ok · 1 verification failed · 2 bad input or usage · 3 storage or I/O error.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod datadir;
mod dossier;
mod error;
mod governance;
mod service;

use clap::{CommandFactory, FromArgMatches};

/// mimalloc rather than the system allocator: evidence is many small JSON values, and with
/// glibc's malloc allocation and freeing were a quarter of a dossier verification's time
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let parsed = args::Cli::command()
        .try_get_matches()
        .and_then(|m| args::Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // `serve` lets a config file name the data directory unless the flag or env chose one.
    let data_dir_explicit = matches
        .value_source("data_dir")
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue);
    match commands::run(cli, data_dir_explicit) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error::CliError::BrokenPipe) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trailmark: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
