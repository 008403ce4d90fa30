//! Jaeger query API JSON: `{"data": [trace, …]}` streamed trace by trace,
//! each with its `processes` table.

use std::io::{self, Write};

use super::json_text::{int, string, uint};
use super::{Output, TraceWriter, hex_into};
use crate::generate::topology::AttrVal;
use crate::generate::{Catalog, GenSpan};
use crate::model::SpanKind;

pub(super) struct JaegerWriter {
    out: Output,
    traces: u64,
    buf: Vec<u8>,
    processes: Vec<u32>,
}

impl JaegerWriter {
    pub(super) fn new(out: Output) -> Self {
        JaegerWriter { out, traces: 0, buf: Vec::new(), processes: Vec::new() }
    }
}

fn tag(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &AttrVal) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"key\":");
    string(out, key);
    match value {
        AttrVal::Str(s) => {
            out.extend_from_slice(b",\"type\":\"string\",\"value\":");
            string(out, s);
        }
        AttrVal::Int(i) => {
            out.extend_from_slice(b",\"type\":\"int64\",\"value\":");
            int(out, *i);
        }
    }
    out.push(b'}');
}

impl TraceWriter for JaegerWriter {
    fn write_trace(&mut self, catalog: &Catalog, spans: &[GenSpan]) -> io::Result<()> {
        let Some(first) = spans.first() else { return Ok(()) };
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(if self.traces == 0 { b"{\"data\":[" } else { b"," });
        b.extend_from_slice(b"\n{\"traceID\":\"");
        hex_into(b, &first.trace_id);
        b.extend_from_slice(b"\",\"spans\":[");
        self.processes.clear();
        for (i, s) in spans.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            if !self.processes.contains(&s.resource) {
                self.processes.push(s.resource);
            }
            b.extend_from_slice(b"{\"traceID\":\"");
            hex_into(b, &s.trace_id);
            b.extend_from_slice(b"\",\"spanID\":\"");
            hex_into(b, &s.span_id);
            b.extend_from_slice(b"\",\"operationName\":");
            string(b, &catalog.names[s.name as usize]);
            b.extend_from_slice(b",\"references\":[");
            if s.has_parent() {
                b.extend_from_slice(b"{\"refType\":\"CHILD_OF\",\"traceID\":\"");
                hex_into(b, &s.trace_id);
                b.extend_from_slice(b"\",\"spanID\":\"");
                hex_into(b, &s.parent_id);
                b.extend_from_slice(b"\"}");
            }
            b.extend_from_slice(b"],\"startTime\":");
            uint(b, s.start_ns / 1000);
            b.extend_from_slice(b",\"duration\":");
            uint(b, (s.end_ns - s.start_ns) / 1000);
            b.extend_from_slice(b",\"tags\":[");
            let mut first_tag = true;
            if s.kind != SpanKind::Unspecified {
                tag(b, &mut first_tag, "span.kind", &AttrVal::Str(s.kind.as_str().to_string()));
            }
            for (k, v) in &catalog.attr_sets[s.attrs as usize] {
                tag(b, &mut first_tag, k, v);
            }
            if s.error {
                if !first_tag {
                    b.push(b',');
                }
                b.extend_from_slice(b"{\"key\":\"error\",\"type\":\"bool\",\"value\":true}");
                tag(b, &mut false, "otel.status_description", &AttrVal::Str(catalog.names[s.message as usize].clone()));
            }
            b.extend_from_slice(b"],\"logs\":[],\"processID\":\"p");
            uint(b, s.resource as u64);
            b.extend_from_slice(b"\",\"warnings\":null}");
        }
        b.extend_from_slice(b"],\"processes\":{");
        for (i, &r) in self.processes.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            let spec = &catalog.resources[r as usize];
            b.extend_from_slice(b"\"p");
            uint(b, r as u64);
            b.extend_from_slice(b"\":{\"serviceName\":");
            string(b, &catalog.services[spec.service]);
            b.extend_from_slice(b",\"tags\":[");
            let mut first_tag = true;
            tag(b, &mut first_tag, "hostname", &AttrVal::Str(spec.host.clone()));
            tag(b, &mut first_tag, "service.version", &AttrVal::Str(spec.version.clone()));
            tag(b, &mut first_tag, "deployment.environment.name", &AttrVal::Str(spec.environment.clone()));
            b.extend_from_slice(b"]}");
        }
        b.extend_from_slice(b"},\"warnings\":null}");
        self.traces += 1;
        self.out.write_all(b)
    }

    fn finish(&mut self, _catalog: &Catalog) -> io::Result<()> {
        let tail: &[u8] = if self.traces == 0 { b"{\"data\":[]}\n" } else { b"\n]}\n" };
        self.out.write_all(tail)?;
        self.out.finish()
    }
}
