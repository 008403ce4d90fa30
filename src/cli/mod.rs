//! Command-line interface: flag parsing (clap) kept apart from each
//! command's validated configuration and its run.
//!
//! One module per command — `analyze`, `graph`, `critical_path`,
//! `bottlenecks`, `diff`, `changes`, `verdict`, `merge`, `export`, `sql`, `generate`,
//! `serve`, `send`, `report` — and what they share: `input` (inputs and
//! pipeline flags), `progress` (the progress bar).

mod analyze;
mod bottlenecks;
mod changes;
mod critical_path;
mod diff;
mod export;
mod generate;
mod graph;
mod input;
mod merge;
mod progress;
mod report;
mod send;
mod serve;
mod sql;
mod verdict;

use std::io::{self, Write};

use clap::{Parser, Subcommand};
use clap_complete::Shell;

/// Rows, traces or operations a table lists unless `--top` says otherwise.
pub const DEFAULT_TOP: usize = 10;

/// Exit code for every failure: bad flags, unreadable or empty input, a
/// write error. 1 and 3 are answers (`verdict`: fail, inconclusive; `diff`,
/// `changes`: something regressed), never failures.
pub const EXIT_ERROR: u8 = 2;

/// tracelens turns distributed traces into answers.
#[derive(Debug, Parser)]
#[command(
    name = "tracelens",
    version,
    about = "Turns distributed traces into answers: who calls whom, how slow, where the time goes.",
    after_help = "Examples:\n  tracelens analyze testdata/shop.otlp.json\n  tracelens generate --spans 100000 --format otlp-protobuf-stream -o dump.pb\n  tracelens analyze --format json dumps/\n  tracelens graph --format dot dumps/ | dot -Tsvg > graph.svg\n  tracelens bottlenecks dumps/\n  tracelens completions bash > /etc/bash_completion.d/tracelens"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise trace dumps: formats, spans, traces, services, time range, warnings.
    Analyze(analyze::AnalyzeArgs),
    /// The critical path of each trace: the chain of work that decided its duration.
    CriticalPath(critical_path::CriticalPathArgs),
    /// Which operations own the most critical-path time over all traces, and patterns worth a look.
    Bottlenecks(bottlenecks::BottlenecksArgs),
    /// Receive OTLP from Collectors and SDKs, analyse live, and answer queries.
    Serve(Box<serve::ServeArgs>),
    /// Show the service dependency graph: who calls whom, how often, how slow, how often it fails.
    Graph(graph::GraphArgs),
    /// Write synthetic traces from a seeded model of a microservice system.
    Generate(Box<generate::GenerateArgs>),
    /// Judge a deploy: should the new version of a service be rolled back? (exit 0 pass, 1 fail, 3 inconclusive)
    Verdict(Box<verdict::VerdictArgs>),
    /// Every operation and edge that regressed or improved between two inputs (exit 1 if any regressed).
    Diff(Box<diff::DiffArgs>),
    /// What got worse (or better) anywhere in each window of time, against a baseline before it (exit 1 if any regressed).
    Changes(Box<changes::ChangesArgs>),
    /// Combine partials (from `analyze --partial` or receivers) into one report, exactly.
    Merge(Box<merge::MergeArgs>),
    /// Write a self-contained HTML report: graph, histograms, bottlenecks, trace waterfalls, comparison, verdict.
    Report(Box<report::ReportArgs>),
    /// Write spans, edges or critical-path sections as a Parquet, CSV or NDJSON table.
    Export(Box<export::ExportArgs>),
    /// Query spans, edges and critical-path sections with SQL.
    Sql(Box<sql::SqlArgs>),
    /// Replay trace dumps to an OTLP endpoint (gRPC or HTTP), honouring its retry hints.
    Send(Box<send::SendArgs>),
    /// Print shell completions for tracelens.
    #[command(
        after_help = "Examples:\n  tracelens completions bash \\\n      > ~/.local/share/bash-completion/completions/tracelens\n  tracelens completions zsh > ~/.zfunc/_tracelens\n  tracelens completions fish > ~/.config/fish/completions/tracelens.fish"
    )]
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
    /// Print the man page (roff), or write a page per command into a directory.
    #[command(
        after_help = "Examples:\n  tracelens man > tracelens.1 && man -l tracelens.1\n  tracelens man --out-dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write tracelens.1 and tracelens-<command>.1 here instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

impl Cli {
    /// Whether the command is the long-running receiver.
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

/// Runs the parsed command; the exit code on success (non-zero only for a
/// verdict other than pass).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args).map(|()| 0),
        Command::Generate(args) => generate::run(*args).map(|()| 0),
        Command::Graph(args) => graph::run(args).map(|()| 0),
        Command::Serve(args) => serve::run(*args).map(|()| 0),
        Command::CriticalPath(args) => critical_path::run(args).map(|()| 0),
        Command::Bottlenecks(args) => bottlenecks::run(args).map(|()| 0),
        Command::Verdict(args) => verdict::run(*args),
        Command::Diff(args) => diff::run(*args),
        Command::Changes(args) => changes::run(*args),
        Command::Merge(args) => merge::run(*args).map(|()| 0),
        Command::Report(args) => report::run(*args).map(|()| 0),
        Command::Export(args) => export::run(*args).map(|()| 0),
        Command::Sql(args) => sql::run(*args).map(|()| 0),
        Command::Send(args) => send::run(*args).map(|()| 0),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tracelens", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out_dir } => man(out_dir.as_deref()).map(|()| 0),
    }
}

/// The man pages, generated from the command-line definition.
fn man(out_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = out_dir else {
        return write_answer(|out| clap_mangen::Man::new(cmd).render(out));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("tracelens.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("tracelens-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(&*name.clone().leak())));
    }
    for (file, page) in pages {
        let path = dir.join(&file);
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Whether an error is standard output closed by its reader (`| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Writes a command's answer to standard output; a reader that closed it
/// early (`| head`) does not change the answer, any other write error
/// (a full disk) is a failure.
pub fn write_answer(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
        Ok(()) => Ok(()),
    }
}

/// Parses a duration flag: a whole number and a unit (`500ms`, `90s`,
/// `15m`, `2h`, `1d`; also `ns`, `us`), the one syntax of every duration
/// flag and setting.
pub fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    tracelens::model::time::parse_duration(text)
        .map(std::time::Duration::from_nanos)
        .ok_or_else(|| format!("{text:?} is not a duration such as 500ms, 90s, 15m, 2h or 1d"))
}

/// A size in bytes: a number, or one with a unit (`512MiB`, `2GiB`,
/// `64KiB`; `MB` and `GB` are read as powers of 1000).
pub fn bytes_arg(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{text:?} is not a size such as 512MiB, 2GiB or 1000000")),
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() && n * (scale as f64) < 1.8e19 => Ok((n * scale as f64) as u64),
        _ => Err(format!("{text:?} is not a size above 0 such as 512MiB, 2GiB or 1000000")),
    }
}

/// A duration flag that was once a number of milliseconds: a duration
/// (`1s`, `250ms`), or a bare number still read as milliseconds.
pub fn duration_or_ms_arg(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(ms) if ms >= 0.0 && ms.is_finite() && ms < 1e15 => Ok(std::time::Duration::from_secs_f64(ms / 1e3)),
        Ok(_) => Err(format!("{text:?} must be zero or more")),
        Err(_) => duration_arg(text),
    }
}

/// A usage error found after parsing (flag combinations clap cannot check).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(super::bytes_arg("1000000"), Ok(1_000_000));
        assert_eq!(super::bytes_arg("512MiB"), Ok(512 << 20));
        assert_eq!(super::bytes_arg("2gib"), Ok(2 << 30));
        assert_eq!(super::bytes_arg("1.5GiB"), Ok(3 << 29));
        assert_eq!(super::bytes_arg("64 KiB"), Ok(64 << 10));
        assert_eq!(super::bytes_arg("2GB"), Ok(2_000_000_000));
        for bad in ["", "0", "-1MiB", "12XB", "MiB", "1e400"] {
            assert!(super::bytes_arg(bad).is_err(), "{bad:?}");
        }
    }

    /// Lines of the examples block of a rendered help text.
    fn example_lines(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Examples:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn help_examples_are_never_wrapped_mid_command() {
        let root = super::Cli::command();
        let mut commands = vec![root.clone()];
        commands.extend(root.get_subcommands().cloned());
        let programs = ["tracelens", "curl", "kubectl"];
        let mut wrapped = Vec::new();
        for width in [80, 100] {
            for cmd in &commands {
                let name = cmd.get_name().to_string();
                for help in
                    [cmd.clone().term_width(width).render_help(), cmd.clone().term_width(width).render_long_help()]
                {
                    let lines = example_lines(&help.to_string());
                    assert!(!lines.is_empty(), "{name}: no examples");
                    for (i, line) in lines.iter().enumerate() {
                        let continues = i > 0 && lines[i - 1].trim_end().ends_with('\\');
                        let command = programs.iter().any(|p| line.starts_with(&format!("  {p} ")));
                        if !command && !continues {
                            wrapped.push(format!("{name} at width {width}: {line:?}"));
                        }
                    }
                }
            }
        }
        wrapped.dedup();
        assert!(wrapped.is_empty(), "examples wrapped mid-command:\n{}", wrapped.join("\n"));
    }
}
