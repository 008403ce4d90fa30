//! `tracelens graph`: the service dependency graph of trace dumps, as a
//! table, JSON, Graphviz DOT or Mermaid.

use std::io::{self, Write};

use clap::{Args, ValueEnum};

use tracelens::analysis::ServiceGraph;
use tracelens::model::Dictionary;
use tracelens::render;

use super::input::{self, InputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Aligned text.
    Table,
    /// `{"nodes": [...], "edges": [...]}`.
    Json,
    /// Graphviz DOT (`tracelens graph … --format dot | dot -Tsvg > graph.svg`).
    Dot,
    /// Mermaid flowchart (renders on GitHub in a ```mermaid block).
    Mermaid,
}

/// Flags of `tracelens graph`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens graph dump.jsonl\n  tracelens graph --format dot traces/ | dot -Tsvg > graph.svg\n  tracelens graph --format mermaid dump.pb > graph.mmd\n  tracelens graph --format json zipkin.json | jq '.edges[] | select(.failed>0)'\n\nEdges come from client/server and producer/consumer span pairs, database calls, virtual nodes for\nuninstrumented peers and external callers (user), and, for spans without kinds, from a change of\nservice between parent and child (marked inferred)."
)]
pub struct GraphArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Table)]
    format: GraphFormat,
}

pub fn run(args: GraphArgs) -> anyhow::Result<()> {
    let inputs = args.input.validate()?.analysis_only();
    let mut graph = ServiceGraph::new(&Dictionary::default());
    let report = inputs.run(&mut |_, trace| graph.add_trace(&trace))?;
    graph.finish();
    let view = graph.view(&report.dict);
    let mut out = io::stdout().lock();
    match args.format {
        GraphFormat::Table => out.write_all(render::graph::table(&view).as_bytes())?,
        GraphFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        GraphFormat::Dot => out.write_all(render::graph::dot(&view).as_bytes())?,
        GraphFormat::Mermaid => out.write_all(render::graph::mermaid(&view).as_bytes())?,
    }
    out.flush()?;
    input::print_notes(&report);
    Ok(())
}
