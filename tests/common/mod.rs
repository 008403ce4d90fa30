//! Helpers shared by the integration tests: fixture paths and a one-call
//! analysis that returns the facts tests assert.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tracelens::analysis::Summary;
use tracelens::model::{Dictionary, Trace, WarningKind, Warnings};
use tracelens::pipeline::{self, PipelineConfig};
use tracelens::read::{Input, ReadError, ReadOptions, expand_inputs};

/// The project's own fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// The real public traces in `../shared/testdata` (see its README).
pub fn public(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata").join(name);
    assert!(
        path.exists(),
        "public test data missing: {} (the shared/ folder must sit beside the project)",
        path.display()
    );
    path
}

/// What an analysis of some inputs found.
pub struct Facts {
    pub formats: Vec<String>,
    pub spans_read: u64,
    pub summary: Summary,
    pub services: Vec<String>,
    pub warnings: Warnings,
    pub traces: Vec<Trace>,
    pub dict: Dictionary,
}

impl Facts {
    pub fn warning(&self, kind: WarningKind) -> u64 {
        self.warnings.get(kind)
    }

    /// The only trace, for single-trace inputs.
    pub fn trace(&self) -> &Trace {
        assert_eq!(self.traces.len(), 1, "expected one trace");
        &self.traces[0]
    }

    /// The span named `name` (unique within the facts).
    pub fn span(&self, name: &str) -> &tracelens::model::Span {
        let found: Vec<_> =
            self.traces.iter().flat_map(|t| &t.spans).filter(|s| self.dict.resolve(s.name) == name).collect();
        assert_eq!(found.len(), 1, "expected one span named {name:?}, found {}", found.len());
        found[0]
    }
}

pub fn analyze_with(paths: &[PathBuf], read: ReadOptions) -> Result<Facts, ReadError> {
    let inputs: Vec<Input> = expand_inputs(paths)?;
    let mut summary = Summary::default();
    let mut traces = Vec::new();
    let config = PipelineConfig { read, ..Default::default() };
    let report = pipeline::run(&inputs, &config, &mut |_, s| s, &mut |_, t| {
        summary.add_trace(&t);
        traces.push(t);
    })?;
    Ok(Facts {
        formats: report.inputs.iter().map(|(_, r)| r.format.to_string()).collect(),
        spans_read: report.spans_read(),
        services: summary.service_names(&report.dict),
        summary,
        warnings: report.warnings,
        traces,
        dict: report.dict,
    })
}

pub fn analyze(path: &Path) -> Facts {
    analyze_with(&[path.to_path_buf()], tracelens::table::read_options(false)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn tracelens(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracelens"));
    cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run tracelens");
    if let Some(data) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs `tracelens generate -o <dir>/<name> <args>` and returns the path.
pub fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec!["generate", "-o", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = tracelens(&all, None);
    assert!(out.status.success(), "generate {args:?}: {}", stderr(&out));
    path
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}
