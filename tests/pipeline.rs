//! The offline pipeline streams: traces reach the analysis while the input
//! is still being read, so memory is bounded by the traces still open.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::tracelens;
use tracelens::assemble::AssemblerConfig;
use tracelens::pipeline::{self, PipelineConfig};
use tracelens::read::Input;

struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn traces_are_delivered_while_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.pb");
    let out = tracelens(
        &["generate", "--traces", "3000", "--format", "otlp-protobuf-stream", "-o", path.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    let total = std::fs::metadata(&path).unwrap().len();
    let read = Arc::new(AtomicU64::new(0));
    let config = PipelineConfig { assemble: AssemblerConfig { idle_spans: 1000 }, ..Default::default() };
    let mut at_delivery = Vec::new();
    let counter = read.clone();
    let report = pipeline::run(
        &[Input::Path(path)],
        &config,
        &mut |_, source| Box::new(Counting { inner: source, read: counter.clone() }),
        &mut |_, trace| {
            assert!(!trace.is_empty());
            at_delivery.push(read.load(Ordering::Relaxed));
        },
    )
    .unwrap();
    assert_eq!(at_delivery.len(), 3000);
    assert_eq!(report.warnings.total(), 0, "{:?}", report.warnings);
    // Half the traces were analysed before even half of the file was read.
    assert!(at_delivery[1500] < total * 3 / 4, "{} of {total}", at_delivery[1500]);
    assert!(at_delivery[0] < total / 4, "{} of {total}", at_delivery[0]);
}
