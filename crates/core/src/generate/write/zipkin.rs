//! Zipkin v2 JSON: one span array, streamed. Resource attributes travel as
//! tags (`service.version`, `host.name`, …), as OpenTelemetry's Zipkin
//! exporter writes them.

use std::io::{self, Write};

use super::json_text::{string, uint};
use super::{Output, TraceWriter, hex_into};
use crate::generate::topology::AttrVal;
use crate::generate::{Catalog, GenSpan};
use crate::model::SpanKind;

pub(super) struct ZipkinWriter {
    out: Output,
    spans: u64,
    buf: Vec<u8>,
}

impl ZipkinWriter {
    pub(super) fn new(out: Output) -> Self {
        ZipkinWriter { out, spans: 0, buf: Vec::new() }
    }
}

fn tag(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    string(out, key);
    out.push(b':');
    string(out, value);
}

impl TraceWriter for ZipkinWriter {
    fn write_trace(&mut self, catalog: &Catalog, spans: &[GenSpan]) -> io::Result<()> {
        let b = &mut self.buf;
        b.clear();
        for s in spans {
            b.extend_from_slice(if self.spans == 0 { b"[\n" } else { b",\n" });
            self.spans += 1;
            let spec = &catalog.resources[s.resource as usize];
            b.extend_from_slice(b"{\"traceId\":\"");
            hex_into(b, &s.trace_id);
            b.extend_from_slice(b"\",\"id\":\"");
            hex_into(b, &s.span_id);
            if s.has_parent() {
                b.extend_from_slice(b"\",\"parentId\":\"");
                hex_into(b, &s.parent_id);
            }
            b.extend_from_slice(b"\",\"name\":");
            string(b, &catalog.names[s.name as usize]);
            let kind = match s.kind {
                SpanKind::Client => Some("CLIENT"),
                SpanKind::Server => Some("SERVER"),
                SpanKind::Producer => Some("PRODUCER"),
                SpanKind::Consumer => Some("CONSUMER"),
                SpanKind::Internal | SpanKind::Unspecified => None,
            };
            if let Some(kind) = kind {
                b.extend_from_slice(b",\"kind\":\"");
                b.extend_from_slice(kind.as_bytes());
                b.push(b'"');
            }
            b.extend_from_slice(b",\"timestamp\":");
            uint(b, s.start_ns / 1000);
            b.extend_from_slice(b",\"duration\":");
            uint(b, (s.end_ns - s.start_ns) / 1000);
            b.extend_from_slice(b",\"localEndpoint\":{\"serviceName\":");
            string(b, &catalog.services[spec.service]);
            b.push(b'}');
            let attrs = &catalog.attr_sets[s.attrs as usize];
            if s.kind == SpanKind::Client
                && let Some((_, AttrVal::Str(peer))) = attrs.iter().find(|(k, _)| k == "peer.service")
            {
                b.extend_from_slice(b",\"remoteEndpoint\":{\"serviceName\":");
                string(b, peer);
                b.push(b'}');
            }
            b.extend_from_slice(b",\"tags\":{");
            let mut first = true;
            tag(b, &mut first, "service.version", &spec.version);
            tag(b, &mut first, "host.name", &spec.host);
            tag(b, &mut first, "deployment.environment.name", &spec.environment);
            if s.kind == SpanKind::Internal {
                tag(b, &mut first, "span.kind", "internal");
            }
            for (k, v) in attrs {
                match v {
                    AttrVal::Str(text) => tag(b, &mut first, k, text),
                    AttrVal::Int(i) => tag(b, &mut first, k, &i.to_string()),
                }
            }
            if s.error {
                tag(b, &mut first, "error", &catalog.names[s.message as usize]);
            }
            b.extend_from_slice(b"}}");
        }
        self.out.write_all(b)
    }

    fn finish(&mut self, _catalog: &Catalog) -> io::Result<()> {
        let tail: &[u8] = if self.spans == 0 { b"[]\n" } else { b"\n]\n" };
        self.out.write_all(tail)?;
        self.out.finish()
    }
}
