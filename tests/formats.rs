//! Every format tracelens reads, from its own fixtures and from real public
//! traces, with span, trace and service counts asserted.

mod common;

use common::{analyze, fixture, public};
use tracelens::model::{NO_PARENT, SpanKind, SpanQuality, StatusCode, WarningKind};

const SHOP_SERVICES: [&str; 5] = ["cart", "checkout", "frontend", "payments", "shipping"];

/// The shop fixtures hold the same two traces in every format.
#[test]
fn shop_fixture_reads_the_same_in_every_format() {
    let cases = [
        ("shop.otlp.json", "otlp-json"),
        ("shop.otlp.jsonl", "otlp-json-lines"),
        ("shop.otlp.pb", "otlp-protobuf"),
        ("shop.otlp-stream.bin", "otlp-protobuf-stream"),
        ("shop.otlp-stream-zstd.bin", "otlp-protobuf-stream"),
        ("shop.jaeger.json", "jaeger-json"),
        ("shop.zipkin.json", "zipkin-json"),
        ("shop.otlp.json.gz", "otlp-json+gzip"),
        ("shop.zipkin.json.zst", "zipkin-json+zstd"),
        ("shop.parquet", "parquet"),
    ];
    for (file, format) in cases {
        let f = analyze(&fixture(file));
        assert_eq!(f.formats, vec![format], "{file}");
        assert_eq!(f.spans_read, 14, "{file}");
        assert_eq!(f.summary.spans, 14, "{file}");
        assert_eq!(f.summary.traces, 2, "{file}");
        assert_eq!(f.services, SHOP_SERVICES, "{file}");
        assert_eq!(f.summary.error_spans, 2, "{file}");
        assert_eq!(f.summary.root_spans, 2, "{file}");
        assert_eq!(f.warnings.total(), 0, "{file}: {:?}", f.warnings);
        // 2026-11-01T10:00:00Z .. +230 ms
        assert_eq!(f.summary.first_start_ns, Some(1_793_527_200_000_000_000), "{file}");
        assert_eq!(f.summary.last_end_ns, Some(1_793_527_200_230_000_000), "{file}");

        // Structure: the payments server span hangs under checkout's Charge client span.
        let trace = f.traces.iter().find(|t| t.len() == 11).expect("trace A");
        let idx = |id: &str| trace.spans.iter().position(|s| s.span_id.to_hex() == id).unwrap();
        let payments = idx("a000000000000009");
        assert_eq!(trace.parents[payments], idx("a000000000000008") as u32, "{file}");
        assert_eq!(trace.parents[idx("a000000000000001")], NO_PARENT, "{file}");
        let span = &trace.spans[payments];
        assert_eq!(span.kind, SpanKind::Server, "{file}");
        assert_eq!(span.status, StatusCode::Error, "{file}");
        assert_eq!(span.status_message(), Some("card declined"), "{file}");
        assert_eq!(span.duration_ns(), Some(46_000_000), "{file}");
        assert_eq!(f.dict.resolve(span.service), "payments", "{file}");
        let consumer = &trace.spans[idx("a00000000000000b")];
        let expected_kind = SpanKind::Consumer;
        assert_eq!(consumer.kind, expected_kind, "{file}");
        assert_eq!(trace.spans[idx("a00000000000000a")].kind, SpanKind::Producer, "{file}");
    }
}

#[test]
fn resource_attributes_are_lifted() {
    for file in ["shop.otlp.json", "shop.otlp.pb", "shop.jaeger.json"] {
        let f = analyze(&fixture(file));
        let span = f.span("SELECT cart_items");
        let resource = f.dict.resource_of(span.resource);
        assert_eq!(f.dict.resolve(resource.service), "cart", "{file}");
        assert_eq!(f.dict.resolve(resource.version), "3.0.2", "{file}");
        assert_eq!(f.dict.resolve(resource.host), "node-3", "{file}");
        if file != "shop.jaeger.json" {
            assert_eq!(f.dict.resolve(resource.environment), "production", "{file}");
            assert_eq!(f.dict.resolve(span.scope_name), "shop-instrumentation", "{file}");
        }
        assert_eq!(span.kind, SpanKind::Client);
        let db = span.attributes.iter().find(|a| f.dict.resolve(a.key) == "db.system").expect("db.system");
        assert_eq!(db.value.as_str(), Some("postgresql"), "{file}");
    }
}

#[test]
fn zipkin_smartthings_oauth() {
    let f = analyze(&public("zipkin/smartthings-oauth-authorization.json"));
    assert_eq!(f.formats, vec!["zipkin-json"]);
    assert_eq!(f.spans_read, 175);
    assert_eq!(f.summary.spans, 175);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services.len(), 8);
    // 45 shared SERVER halves (one CLIENT fans out to 5 of them, which then
    // need distinct ids), 19 spans without duration.
    assert_eq!(f.warning(WarningKind::SharedSpanSplit), 45);
    assert_eq!(f.warning(WarningKind::DuplicateSpanId), 4);
    assert_eq!(f.warning(WarningKind::MissingDuration), 19);
    assert_eq!(f.warning(WarningKind::MissingStartTime), 0);
    assert_eq!(f.summary.error_spans, 2);
    let t = f.trace();
    let mut ids: Vec<_> = t.spans.iter().map(|s| s.span_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 175, "span ids unique after assembly");
    // Every split server half hangs under the CLIENT that shares its original id.
    for (i, s) in t.spans.iter().enumerate() {
        if s.quality.contains(SpanQuality::SHARED_SPLIT) {
            let parent = &t.spans[t.parent(i).expect("split span has a parent")];
            assert_eq!(parent.kind, SpanKind::Client);
            assert_eq!(Some(parent.span_id), s.parent_id);
        }
    }
}

#[test]
fn zipkin_public_files() {
    // (file, spans, services, shared splits, orphans)
    let cases = [
        ("zipkin/yelp.json", 16, 6, 3, 0),
        ("zipkin/messaging-kafka.json", 28, 2, 0, 0),
        ("zipkin/messaging.json", 4, 2, 0, 0),
        ("zipkin/messaging2.json", 11, 4, 0, 6),
        ("zipkin/skew.json", 4, 2, 1, 0),
        ("zipkin/ascend.json", 8, 3, 2, 0),
        ("zipkin/simple-db-p6.json", 5, 1, 0, 0),
    ];
    for (file, spans, services, splits, orphans) in cases {
        let f = analyze(&public(file));
        assert_eq!(f.formats, vec!["zipkin-json"], "{file}");
        assert_eq!(f.spans_read, spans, "{file}");
        assert_eq!(f.summary.traces, 1, "{file}");
        assert_eq!(f.services.len(), services, "{file}: {:?}", f.services);
        assert_eq!(f.warning(WarningKind::SharedSpanSplit), splits, "{file}");
        assert_eq!(f.warning(WarningKind::OrphanParent), orphans, "{file}");
    }
    // yelp's root SERVER span is shared but has no CLIENT: it keeps its id.
    let yelp = analyze(&public("zipkin/yelp.json"));
    assert!(yelp.services.contains(&"unknown".to_string()));
    assert!(yelp.services.contains(&"yelp_main/api_proxy".to_string()));
    // messaging: 128-bit trace id kept whole.
    let messaging = analyze(&public("zipkin/messaging.json"));
    assert!(!messaging.trace().trace_id.to_hex().starts_with("0000000000000000"));
    // kafka: three error tags, one of them empty, all count.
    let kafka = analyze(&public("zipkin/messaging-kafka.json"));
    assert_eq!(kafka.summary.error_spans, 3);
    let producers = kafka.trace().spans.iter().filter(|s| s.kind == SpanKind::Producer).count();
    let consumers = kafka.trace().spans.iter().filter(|s| s.kind == SpanKind::Consumer).count();
    assert_eq!((producers, consumers), (9, 7));
}

#[test]
fn tempo_batches_with_base64_ids_and_enum_names() {
    let f = analyze(&public("tempo/responseTrace.json"));
    assert_eq!(f.formats, vec!["tempo-json"]);
    assert_eq!(f.spans_read, 8);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services.len(), 5);
    assert_eq!(f.warnings.total(), 0, "{:?}", f.warnings);
    let t = f.trace();
    // "O6VWCcPN5JZJzXfR+dzZNg==" / "Sc130fnc2TY="
    assert_eq!(t.trace_id.to_hex(), "3ba55609c3cde49649cd77d1f9dcd936");
    let span = t.spans.iter().find(|s| s.span_id.to_hex() == "49cd77d1f9dcd936").expect("base64 span id decoded");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(f.dict.resolve(span.name), "productpage.bookinfo.svc.cluster.local:9080/productpage");
}

#[test]
fn jaeger_public_files() {
    let f = analyze(&public("jaeger/ui_01.json"));
    assert_eq!(f.formats, vec!["jaeger-json"]);
    assert_eq!(f.spans_read, 5);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services.len(), 2);
    assert_eq!(f.warning(WarningKind::DuplicateSpanId), 1);
    let t = f.trace();
    let four = t.spans.iter().find(|s| s.span_id.to_hex() == "0000000000000004").unwrap();
    assert_eq!(four.parent_id.map(|p| p.to_hex()).as_deref(), Some("0000000000000002"));
    // The cross-trace CHILD_OF and the FOLLOWS_FROM become links.
    assert_eq!(four.links().len(), 2);
    let tagged = t.spans.iter().find(|s| !s.attributes.is_empty()).unwrap();
    assert!(tagged.is_error(), "error=true tag marks the span failed");
    let blob = tagged.attributes.iter().find(|a| f.dict.resolve(a.key) == "blob").unwrap();
    assert!(matches!(blob.value, tracelens::model::Value::Bytes(_)), "binary tag decoded from base64");

    let f = analyze(&public("jaeger/spansAmongEachOther.json"));
    assert_eq!(f.spans_read, 12);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services, vec!["api-gateway", "customers-service"]);
    // 31 hex digits and a 15-digit span id: left-padded, not rejected.
    assert_eq!(f.trace().trace_id.to_hex(), "0df84e36b9e2ee3815d07f0867a5be1f");
    assert!(f.trace().spans.iter().any(|s| s.span_id.to_hex() == "0a68c6983a6d81a2"));
    assert_eq!(f.warnings.total(), 0, "{:?}", f.warnings);
}

#[test]
fn otlp_public_files() {
    let f = analyze(&public("otlp/otlp2jaeger-multi-in.jsonl"));
    assert_eq!(f.formats, vec!["otlp-json-lines"]);
    assert_eq!(f.spans_read, 4);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services.len(), 1);
    assert!(f.trace().spans.iter().all(|s| s.kind == SpanKind::Internal));
    assert_eq!(f.warnings.total(), 0);

    // The same span twice, and its parent not in the file.
    let f = analyze(&public("otlp/otlp2jaeger-in.json"));
    assert_eq!(f.formats, vec!["otlp-json"]);
    assert_eq!(f.spans_read, 2);
    assert_eq!(f.summary.spans, 1);
    assert_eq!(f.summary.traces, 1);
    assert_eq!(f.services.len(), 1);
    assert_eq!(f.warning(WarningKind::DuplicateSpan), 1);
    assert_eq!(f.warning(WarningKind::OrphanParent), 1);
    assert_eq!(f.trace().spans[0].kind, SpanKind::Server);
}

#[test]
fn a_directory_reads_every_file_and_joins_traces_across_files() {
    let f = common::analyze_with(&[public("zipkin")], Default::default()).unwrap();
    assert_eq!(f.formats.len(), 8);
    assert_eq!(f.spans_read, 175 + 16 + 28 + 4 + 11 + 4 + 8 + 5);
}

/// The Collector's `nativeCompression` gate writes one zstd stream around the
/// whole length-prefixed file; any dump may also arrive gzip-compressed.
#[test]
fn whole_file_compression_around_any_format() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let stream = std::fs::read(fixture("shop.otlp-stream.bin")).unwrap();
    let pb = std::fs::read(fixture("shop.otlp.pb")).unwrap();
    let zst = dir.path().join("stream.zst");
    std::fs::write(&zst, zstd::encode_all(&stream[..], 3).unwrap()).unwrap();
    let gz = dir.path().join("request.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&pb).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    // gzip inside zstd: two layers.
    let both = dir.path().join("jaeger.json.gz.zst");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(fixture("shop.jaeger.json")).unwrap()).unwrap();
    std::fs::write(&both, zstd::encode_all(&enc.finish().unwrap()[..], 1).unwrap()).unwrap();
    for (path, format) in
        [(zst, "otlp-protobuf-stream+zstd"), (gz, "otlp-protobuf+gzip"), (both, "jaeger-json+zstd+gzip")]
    {
        let f = analyze(&path);
        assert_eq!(f.formats, vec![format]);
        assert_eq!(f.summary.spans, 14);
        assert_eq!(f.summary.traces, 2);
        assert_eq!(f.warnings.total(), 0);
    }
}
