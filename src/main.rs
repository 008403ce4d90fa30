//! The `tracelens` command: parses arguments, runs one command, and maps
//! errors to exit codes (0 success, 1 internal failure, 2 usage or input
//! error).

mod cli;

/// mimalloc: span decoding allocates and frees many small strings and
/// vectors; the system allocator spent a third of `analyze` time on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`tracelens … | head`) is not a failure.
            if err.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            let _ = io::stdout().flush();
            eprintln!("tracelens: error: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
