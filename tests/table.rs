//! Columnar tables: every input format exported to Parquet and read back
//! gives the same analyses; SQL answers known questions and refuses bad
//! ones clearly; a Parquet file in the ClickHouse exporter's layout is
//! analysed.

mod common;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use tracelens::analysis::critical_path::{CriticalPathConfig, critical_path};
use tracelens::analysis::{ServiceGraph, SpanMetrics};
use tracelens::model::Trace;

use common::{Facts, analyze, fixture, stderr, stdout, tracelens};

/// Everything the round trip must keep: the graph, span metrics and every
/// trace's critical path, in names.
fn analyses(f: &Facts) -> (String, String, Vec<String>) {
    let mut graph = ServiceGraph::new(&f.dict);
    let mut metrics = SpanMetrics::default();
    for t in &f.traces {
        graph.add_trace(t);
        metrics.add_trace(t);
    }
    graph.finish();
    let mut paths: Vec<String> = f
        .traces
        .iter()
        .map(|t: &Trace| {
            let cp = critical_path(t, &CriticalPathConfig::default());
            let sections: Vec<String> = cp
                .sections
                .iter()
                .map(|s| format!("{}:{}-{}", t.spans[s.span].span_id.to_hex(), s.start_ns, s.end_ns))
                .collect();
            format!("{} {} {}", t.trace_id.to_hex(), cp.duration_ns, sections.join(","))
        })
        .collect();
    paths.sort();
    (
        serde_json::to_string(&graph.view(&f.dict)).unwrap(),
        serde_json::to_string(&metrics.views(&f.dict)).unwrap(),
        paths,
    )
}

fn export(input: &Path, output: &Path, table: &str) {
    let out =
        tracelens(&["export", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--table", table], None);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn every_format_round_trips_through_parquet_with_the_same_analyses() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("shop.pb");
    let out = tracelens(
        &["generate", "--traces", "2000", "--format", "otlp-protobuf-stream", "-o", generated.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    let inputs: Vec<PathBuf> = [
        "shop.otlp.json",
        "shop.otlp.pb",
        "shop.otlp-stream-zstd.bin",
        "shop.jaeger.json",
        "shop.zipkin.json",
        "graph-edges.otlp.jsonl",
        "graph-kindless.jaeger.json",
    ]
    .iter()
    .map(|n| fixture(n))
    .chain([generated])
    .collect();
    for input in inputs {
        let parquet = dir.path().join("out.parquet");
        export(&input, &parquet, "spans");
        let (original, back) = (analyze(&input), analyze(&parquet));
        assert_eq!(back.formats, vec!["parquet".to_string()]);
        assert_eq!(back.spans_read, original.spans_read, "{}", input.display());
        let (a, b) = (analyses(&original), analyses(&back));
        assert_eq!(a.0, b.0, "graph of {}", input.display());
        assert_eq!(a.1, b.1, "span metrics of {}", input.display());
        assert_eq!(a.2, b.2, "critical paths of {}", input.display());
    }
}

fn sql(query: &str, input: &Path, format: &str) -> (i32, String, String) {
    let out = tracelens(&["sql", query, input.to_str().unwrap(), "--format", format], None);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn sql_answers_known_questions() {
    let shop = fixture("shop.otlp.json");
    let (code, out, err) =
        sql("SELECT service, count(*) AS spans FROM spans GROUP BY service ORDER BY service", &shop, "csv");
    assert_eq!(code, 0, "{err}");
    let facts = analyze(&shop);
    let mut expected = std::collections::BTreeMap::new();
    for s in facts.traces.iter().flat_map(|t| &t.spans) {
        *expected.entry(facts.dict.resolve(s.service).to_string()).or_insert(0) += 1;
    }
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("service,spans"));
    let got: Vec<String> = lines.map(str::to_string).collect();
    let want: Vec<String> = expected.iter().map(|(s, n)| format!("{s},{n}")).collect();
    assert_eq!(got, want);

    // The trace the API tests know: 11 spans, 120 ms, critical path of 19 sections.
    let (code, out, err) = sql(
        "SELECT count(*) AS sections, max(trace_duration_ns) AS duration FROM critical_path WHERE trace_id = '0af7651916cd43dd8448eb211c80319c'",
        &shop,
        "json",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v[0]["sections"].as_u64(), v[0]["duration"].as_u64()), (Some(19), Some(120_000_000)), "{v}");

    // Edges: the graph's calls, one row each.
    let (code, out, _) = sql(
        "SELECT client, server, count(*) AS calls FROM edges WHERE server = 'carts' GROUP BY client, server",
        &shop,
        "csv",
    );
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("cart,carts,")), "{out}");

    for (query, expect) in [
        ("SELECT nope FROM spans", "unable to find column \"nope\""),
        ("SELEC * FROM spans", "SQL:"),
        ("SELECT * FROM nothing", "nothing"),
    ] {
        let (code, _, err) = sql(query, &shop, "table");
        assert_eq!(code, 2, "{query}: {err}");
        assert!(err.contains("tracelens: error: SQL:") && err.contains(expect), "{query}: {err}");
    }
}

/// A `Map(String, String)` column as the ClickHouse exporter's Parquet
/// carries it: a list of `{key, value}` structs per row.
fn map_column(name: &str, rows: &[Vec<(&str, &str)>]) -> Column {
    let (mut row, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (i, kvs) in rows.iter().enumerate() {
        for (k, v) in kvs {
            row.push(i as u32);
            keys.push(k.to_string());
            values.push(v.to_string());
        }
    }
    let long = df!("row" => row, "key" => keys, "value" => values).unwrap();
    let lists = long
        .lazy()
        .group_by_stable([col("row")])
        .agg([as_struct(vec![col("key"), col("value")]).alias(name)])
        .collect()
        .unwrap();
    lists.column(name).unwrap().clone()
}

#[test]
fn a_clickhouse_exporter_parquet_file_is_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let t0: i64 = 1_793_491_200_000_000_000; // 2026-11-01T00:00:00Z
    let trace = "5b8efff798038103d269b633813fc60c";
    // web SERVER -> web CLIENT -> api SERVER (error) -> api CLIENT to postgres.
    let timestamps = vec![t0, t0 + 1_000_000, t0 + 2_000_000, t0 + 3_000_000];
    fn resource(svc: &str) -> Vec<(&str, &str)> {
        vec![("service.name", svc), ("service.version", "1.0")]
    }
    let mut df = df!(
        "Timestamp" => timestamps,
        "TraceId" => [trace; 4],
        "SpanId" => ["eee19b7ec3c1b174", "eee19b7ec3c1b175", "eee19b7ec3c1b176", "eee19b7ec3c1b177"],
        "ParentSpanId" => ["", "eee19b7ec3c1b174", "eee19b7ec3c1b175", "eee19b7ec3c1b176"],
        "TraceState" => ["", "", "", ""],
        "SpanName" => ["GET /", "GET /api", "GET /api", "SELECT users"],
        "SpanKind" => ["Server", "Client", "Server", "Client"],
        "ServiceName" => ["web", "web", "api", "api"],
        "ScopeName" => ["io.opentelemetry"; 4],
        "ScopeVersion" => ["1.0"; 4],
        "Duration" => [50_000_000u64, 40_000_000, 35_000_000, 20_000_000],
        "StatusCode" => ["Unset", "Unset", "Error", "Ok"],
        "StatusMessage" => ["", "", "boom", ""],
    )
    .unwrap();
    df.with_column(df.column("Timestamp").unwrap().cast(&DataType::Datetime(TimeUnit::Nanoseconds, None)).unwrap())
        .unwrap();
    df.with_column(map_column(
        "ResourceAttributes",
        &[resource("web"), resource("web"), resource("api"), resource("api")],
    ))
    .unwrap();
    df.with_column(map_column(
        "SpanAttributes",
        &[
            vec![("http.route", "/")],
            vec![("http.method", "GET")],
            vec![("http.route", "/api")],
            vec![("db.system", "postgresql"), ("db.name", "users")],
        ],
    ))
    .unwrap();
    let path = dir.path().join("clickhouse.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();

    let facts = analyze(&path);
    assert_eq!(facts.formats, vec!["parquet".to_string()]);
    assert_eq!((facts.traces.len(), facts.spans_read), (1, 4));
    let api = facts.span("SELECT users");
    assert_eq!(api.start_ns, t0 as u64 + 3_000_000);
    assert_eq!(api.duration_ns(), Some(20_000_000));
    assert_eq!(facts.dict.resolve(facts.dict.resource_of(api.resource).version), "1.0");
    let out = tracelens(&["graph", path.to_str().unwrap(), "--format", "json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let g: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let edges: Vec<(String, String, u64, u64)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["client"].as_str().unwrap().to_string(),
                e["server"].as_str().unwrap().to_string(),
                e["calls"].as_u64().unwrap(),
                e["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(edges.contains(&("web".into(), "api".into(), 1, 1)), "{edges:?}");
    assert!(edges.contains(&("api".into(), "users".into(), 1, 0)), "{edges:?}");
    let web_api = g["edges"].as_array().unwrap().iter().find(|e| e["client"] == "web" && e["server"] == "api").unwrap();
    assert_eq!(web_api["server_latency"]["max_ns"], 35_000_000);
}

#[test]
fn export_writes_csv_and_ndjson_and_refuses_unknown_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let shop = fixture("shop.otlp.json");
    let csv = dir.path().join("edges.csv");
    export(&shop, &csv, "edges");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("trace_id,client,server,connection_type,"), "{text}");
    let ndjson = dir.path().join("path.ndjson");
    export(&shop, &ndjson, "critical-path");
    let first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&ndjson).unwrap().lines().next().unwrap()).unwrap();
    assert!(first.get("trace_duration_ns").is_some(), "{first}");
    let out =
        tracelens(&["export", shop.to_str().unwrap(), "--output", dir.path().join("x.txt").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot tell the format"), "{}", stderr(&out));
}

#[test]
fn damaged_parquet_is_an_input_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    export(&fixture("shop.otlp.json"), &good, "spans");
    let bytes = std::fs::read(&good).unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut cases: Vec<Vec<u8>> = vec![bytes[..bytes.len() / 2].to_vec(), b"PAR1garbagePAR1".to_vec()];
    for _ in 0..30 {
        let mut m = bytes.clone();
        for _ in 0..8 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = 4 + rng as usize % (m.len() - 8);
            m[i] ^= (rng >> 32) as u8 | 1;
        }
        cases.push(m);
    }
    for (n, case) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{n}.parquet"));
        std::fs::write(&path, case).unwrap();
        let out = tracelens(&["analyze", path.to_str().unwrap()], None);
        let code = out.status.code();
        // Either the damage missed everything analysed, or a clear error.
        assert!(code == Some(0) || code == Some(2), "case {n}: {code:?} {}", stderr(&out));
        if code == Some(2) {
            assert!(stderr(&out).contains(&format!("bad{n}.parquet")), "{}", stderr(&out));
        }
    }
}

#[test]
fn a_table_piped_into_a_reader_that_stops_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    // Megabytes of edges: more than a pipe holds.
    let input = common::generate(dir.path(), "shop.pb", &["--traces", "3000", "--format", "otlp-protobuf-stream"]);
    for format in ["ndjson", "csv"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tracelens"))
            .args(["export", input.to_str().unwrap(), "--table", "edges", "-o", "-", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then closed, like `| head -1`
        let out = child.wait_with_output().unwrap();
        assert!(first.starts_with(if format == "csv" { "trace_id," } else { "{\"trace_id\"" }), "{first}");
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    }
}
