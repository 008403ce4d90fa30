//! OTLP/JSON lines: one `TracesData` object per line, per batch, written
//! directly as text (hex ids, integer enums, int64 as strings).

use std::io::{self, Write};

use super::json_text::{int, string, uint};
use super::{Batch, BatchEncoder, Output, hex_into};
use crate::generate::topology::AttrVal;
use crate::generate::{Catalog, GenSpan};

fn key_values(out: &mut Vec<u8>, attrs: &[(&str, &AttrVal)]) {
    out.push(b'[');
    for (i, (key, value)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        string(out, key);
        out.extend_from_slice(b",\"value\":");
        match value {
            AttrVal::Str(s) => {
                out.extend_from_slice(b"{\"stringValue\":");
                string(out, s);
            }
            AttrVal::Int(v) => {
                out.extend_from_slice(b"{\"intValue\":\"");
                int(out, *v);
                out.push(b'"');
            }
        }
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

/// Encodes OTLP/JSON lines, one `TracesData` per batch.
#[derive(Default)]
pub(super) struct OtlpJsonLines {
    resources: Vec<Option<Vec<u8>>>,
    attrs: Vec<Option<Vec<u8>>>,
    line: Vec<u8>,
}

impl BatchEncoder for OtlpJsonLines {
    fn encode(&mut self, catalog: &Catalog, batch: &mut Batch, out: &mut Output) -> io::Result<()> {
        let runs = batch.by_resource(catalog);
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"resourceSpans\":[");
        for (n, (resource, scopes)) in runs.into_iter().enumerate() {
            if n > 0 {
                line.push(b',');
            }
            let r = resource as usize;
            if self.resources.len() <= r {
                self.resources.resize(catalog.resources.len().max(r + 1), None);
            }
            let encoded = self.resources[r].get_or_insert_with(|| {
                let spec = &catalog.resources[r];
                let (name, version, env, host) = (
                    AttrVal::Str(catalog.services[spec.service].clone()),
                    AttrVal::Str(spec.version.clone()),
                    AttrVal::Str(spec.environment.clone()),
                    AttrVal::Str(spec.host.clone()),
                );
                let mut out = b"{\"attributes\":".to_vec();
                key_values(
                    &mut out,
                    &[
                        ("service.name", &name),
                        ("service.version", &version),
                        ("deployment.environment.name", &env),
                        ("host.name", &host),
                    ],
                );
                out.push(b'}');
                out
            });
            line.extend_from_slice(b"{\"resource\":");
            line.extend_from_slice(encoded);
            line.extend_from_slice(b",\"scopeSpans\":[");
            for (m, (scope, range)) in scopes.into_iter().enumerate() {
                if m > 0 {
                    line.push(b',');
                }
                let (name, version) = &catalog.scopes[scope as usize];
                line.extend_from_slice(b"{\"scope\":{\"name\":");
                string(line, name);
                line.extend_from_slice(b",\"version\":");
                string(line, version);
                line.extend_from_slice(b"},\"spans\":[");
                for (k, idx) in range.enumerate() {
                    if k > 0 {
                        line.push(b',');
                    }
                    let s = batch.spans[batch.order[idx] as usize];
                    span(line, catalog, &s, &mut self.attrs);
                }
                line.extend_from_slice(b"]}");
            }
            line.extend_from_slice(b"]}");
        }
        line.extend_from_slice(b"]}\n");
        out.write_all(line)
    }
}

fn span(out: &mut Vec<u8>, catalog: &Catalog, s: &GenSpan, attr_cache: &mut Vec<Option<Vec<u8>>>) {
    out.extend_from_slice(b"{\"traceId\":\"");
    hex_into(out, &s.trace_id);
    out.extend_from_slice(b"\",\"spanId\":\"");
    hex_into(out, &s.span_id);
    if s.has_parent() {
        out.extend_from_slice(b"\",\"parentSpanId\":\"");
        hex_into(out, &s.parent_id);
    }
    out.extend_from_slice(b"\",\"name\":");
    string(out, &catalog.names[s.name as usize]);
    out.extend_from_slice(b",\"kind\":");
    uint(out, s.kind as u64);
    out.extend_from_slice(b",\"startTimeUnixNano\":\"");
    uint(out, s.start_ns);
    out.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
    uint(out, s.end_ns);
    out.extend_from_slice(b"\",\"attributes\":");
    let a = s.attrs as usize;
    if attr_cache.len() <= a {
        attr_cache.resize(catalog.attr_sets.len().max(a + 1), None);
    }
    let attrs = attr_cache[a].get_or_insert_with(|| {
        let set: Vec<(&str, &AttrVal)> = catalog.attr_sets[a].iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut enc = Vec::new();
        key_values(&mut enc, &set);
        enc
    });
    out.extend_from_slice(attrs);
    if s.error {
        out.extend_from_slice(b",\"status\":{\"code\":2,\"message\":");
        string(out, &catalog.names[s.message as usize]);
        out.push(b'}');
    }
    out.push(b'}');
}
