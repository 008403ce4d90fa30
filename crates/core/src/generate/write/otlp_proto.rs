//! Length-prefixed OTLP protobuf (`[u32 BE length][TracesData]`), or one
//! bare request, encoded by hand: no intermediate message structs,
//! resources and attribute sets encoded once.

use std::io::{self, Write};

use super::{Batch, BatchEncoder, Output};
use crate::generate::topology::AttrVal;
use crate::generate::{Catalog, GenSpan};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, ((field << 3) | wire) as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// `KeyValue` entries for `field`, each length-delimited.
fn key_values(out: &mut Vec<u8>, field: u32, attrs: &[(&str, AttrVal)]) {
    let mut kv = Vec::new();
    let mut any = Vec::new();
    for (key, value) in attrs {
        kv.clear();
        any.clear();
        bytes_field(&mut kv, 1, key.as_bytes());
        match value {
            AttrVal::Str(s) => bytes_field(&mut any, 1, s.as_bytes()),
            AttrVal::Int(i) => varint_field(&mut any, 3, *i as u64),
        }
        bytes_field(&mut kv, 2, &any);
        bytes_field(out, field, &kv);
    }
}

/// Encodes the Collector file exporter's protobuf stream.
#[derive(Default)]
pub(super) struct OtlpProtoStream {
    /// Encoded `Resource` message per resource index.
    resources: Vec<Option<Vec<u8>>>,
    /// Encoded attribute fields per attribute set.
    attrs: Vec<Option<Vec<u8>>>,
    /// Encoded `InstrumentationScope` per scope index.
    scopes: Vec<Vec<u8>>,
    record: Vec<u8>,
    resource_spans: Vec<u8>,
    scope_spans: Vec<u8>,
    span: Vec<u8>,
    /// One bare request: no length prefix.
    bare: bool,
}

impl OtlpProtoStream {
    /// An encoder of one bare request (no length prefix).
    pub(super) fn bare() -> OtlpProtoStream {
        OtlpProtoStream { bare: true, ..OtlpProtoStream::default() }
    }

    fn resource(&mut self, catalog: &Catalog, index: u32) -> &[u8] {
        let i = index as usize;
        if self.resources.len() <= i {
            self.resources.resize(catalog.resources.len().max(i + 1), None);
        }
        self.resources[i].get_or_insert_with(|| {
            let r = &catalog.resources[i];
            let attrs = [
                ("service.name", AttrVal::Str(catalog.services[r.service].clone())),
                ("service.version", AttrVal::Str(r.version.clone())),
                ("deployment.environment.name", AttrVal::Str(r.environment.clone())),
                ("host.name", AttrVal::Str(r.host.clone())),
            ];
            let mut out = Vec::new();
            key_values(&mut out, 1, &attrs);
            out
        })
    }

    fn encode_span(&mut self, catalog: &Catalog, s: &GenSpan) {
        let a = s.attrs as usize;
        if self.attrs.len() <= a {
            self.attrs.resize(catalog.attr_sets.len().max(a + 1), None);
        }
        let attrs = self.attrs[a].get_or_insert_with(|| {
            let set: Vec<(&str, AttrVal)> = catalog.attr_sets[a].iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let mut out = Vec::new();
            key_values(&mut out, 9, &set);
            out
        });
        let out = &mut self.span;
        out.clear();
        bytes_field(out, 1, &s.trace_id);
        bytes_field(out, 2, &s.span_id);
        if s.has_parent() {
            bytes_field(out, 4, &s.parent_id);
        }
        bytes_field(out, 5, catalog.names[s.name as usize].as_bytes());
        varint_field(out, 6, s.kind as u64);
        fixed64_field(out, 7, s.start_ns);
        fixed64_field(out, 8, s.end_ns);
        out.extend_from_slice(attrs);
        if s.error {
            let mut status = Vec::with_capacity(32);
            bytes_field(&mut status, 2, catalog.names[s.message as usize].as_bytes());
            varint_field(&mut status, 3, 2);
            bytes_field(out, 15, &status);
        }
    }
}

impl BatchEncoder for OtlpProtoStream {
    fn encode(&mut self, catalog: &Catalog, batch: &mut Batch, out: &mut Output) -> io::Result<()> {
        while self.scopes.len() < catalog.scopes.len() {
            let (name, version) = &catalog.scopes[self.scopes.len()];
            let mut scope = Vec::new();
            bytes_field(&mut scope, 1, name.as_bytes());
            bytes_field(&mut scope, 2, version.as_bytes());
            self.scopes.push(scope);
        }
        self.record.clear();
        for (resource, scopes) in batch.by_resource(catalog) {
            let mut rs = std::mem::take(&mut self.resource_spans);
            rs.clear();
            bytes_field(&mut rs, 1, self.resource(catalog, resource));
            for (scope, range) in scopes {
                let mut scope_spans = std::mem::take(&mut self.scope_spans);
                scope_spans.clear();
                bytes_field(&mut scope_spans, 1, &self.scopes[scope as usize]);
                for k in range {
                    let span = batch.spans[batch.order[k] as usize];
                    self.encode_span(catalog, &span);
                    bytes_field(&mut scope_spans, 2, &self.span);
                }
                bytes_field(&mut rs, 2, &scope_spans);
                self.scope_spans = scope_spans;
            }
            bytes_field(&mut self.record, 1, &rs);
            self.resource_spans = rs;
        }
        if !self.bare {
            out.write_all(&(self.record.len() as u32).to_be_bytes())?;
        }
        out.write_all(&self.record)
    }
}
