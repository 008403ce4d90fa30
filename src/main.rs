//! The `tracelens` command: parses arguments, runs one command, and maps
//! the outcome to the exit code: 0 success, 2 any failure (bad flags,
//! unreadable or empty input, a write error); `verdict` answers 1 (fail) and
//! 3 (inconclusive), `diff` 1 (something regressed).

mod cli;

/// mimalloc: span decoding allocates and frees many small strings and
/// vectors; the system allocator spent a third of `analyze` time on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e`: 15 in the v2 and
/// the v3 headers alike (libmimalloc-sys 0.1.49 builds v3 and exports no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Spans are allocated and freed in waves as traces close; with the
    // default 10 ms purge delay mimalloc hands freed pages back to the kernel
    // and then faults fresh zeroed pages in again (a fifth of `analyze` time).
    // A one-second delay keeps them for reuse and still returns memory after
    // a spike.
    // SAFETY: sets a process-wide allocator option; mimalloc options may be
    // set at any time and take a plain integer.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // Help and version are answers.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Every other parse error is a usage error, with the one prefix
            // every tracelens error has.
            eprint!("tracelens: {}", e.render());
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    if args.is_serve() {
        // The receiver holds spans for the trace idle timeout (10 s by
        // default) before freeing them: keep freed pages as long, or every
        // wave of traces faults fresh zeroed pages in again.
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 30_000) };
    }
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`tracelens … | head`) is not a failure.
            if cli::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let _ = io::stdout().flush();
            eprintln!("tracelens: error: {err:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
