#!/usr/bin/env python3
"""Writes tracelens' own test fixtures from one description of two shop
traces, in every format tracelens reads, plus a deliberately damaged dump.

The files it writes are committed; run it again only to change them:

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install opentelemetry-proto zstandard
    /tmp/fx/bin/python testdata/make_fixtures.py

The protobuf files are encoded by Google's protobuf library (via the
opentelemetry-proto package), independently of tracelens' own decoder.
The facts tests assert are listed in testdata/README.md.
"""

import base64
import gzip
import json
import os
import struct
from datetime import datetime, timezone

import zstandard
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = int(datetime(2026, 11, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
MS = 1_000_000

KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}

SERVICES = {
    "frontend": {"version": "2.4.1", "host": "node-1"},
    "checkout": {"version": "1.9.0", "host": "node-2"},
    "cart": {"version": "3.0.2", "host": "node-3"},
    "payments": {"version": "0.7.5", "host": "node-4"},
    "shipping": {"version": "1.1.0", "host": "node-5"},
}

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"

# (trace, span id, parent, service, name, kind, start ms, end ms, error message or None, attributes)
SPANS = [
    (TRACE_A, "a000000000000001", None, "frontend", "GET /checkout", "server", 0, 120, None, {"http.request.method": "GET", "http.response.status_code": 200}),
    (TRACE_A, "a000000000000002", "a000000000000001", "frontend", "POST /cart/checkout", "client", 5, 100, None, {"http.request.method": "POST"}),
    (TRACE_A, "a000000000000003", "a000000000000002", "checkout", "POST /cart/checkout", "server", 8, 98, None, {"http.request.method": "POST"}),
    (TRACE_A, "a000000000000004", "a000000000000003", "checkout", "validate order", "internal", 10, 15, None, {}),
    (TRACE_A, "a000000000000005", "a000000000000003", "checkout", "GetCart", "client", 16, 30, None, {"rpc.system": "grpc"}),
    (TRACE_A, "a000000000000006", "a000000000000005", "cart", "GetCart", "server", 17, 29, None, {"rpc.system": "grpc"}),
    (TRACE_A, "a000000000000007", "a000000000000006", "cart", "SELECT cart_items", "client", 18, 27, None, {"db.system": "postgresql", "db.name": "carts"}),
    (TRACE_A, "a000000000000008", "a000000000000003", "checkout", "Charge", "client", 31, 80, "payment failed", {"rpc.system": "grpc"}),
    (TRACE_A, "a000000000000009", "a000000000000008", "payments", "Charge", "server", 33, 79, "card declined", {"rpc.system": "grpc"}),
    (TRACE_A, "a00000000000000a", "a000000000000003", "checkout", "orders publish", "producer", 81, 83, None, {"messaging.system": "kafka"}),
    (TRACE_A, "a00000000000000b", "a00000000000000a", "shipping", "orders process", "consumer", 90, 130, None, {"messaging.system": "kafka"}),
    (TRACE_B, "b000000000000001", None, "frontend", "GET /", "server", 200, 230, None, {"http.request.method": "GET", "http.response.status_code": 200}),
    (TRACE_B, "b000000000000002", "b000000000000001", "frontend", "GetCart", "client", 202, 220, None, {"rpc.system": "grpc"}),
    (TRACE_B, "b000000000000003", "b000000000000002", "cart", "GetCart", "server", 204, 218, None, {"rpc.system": "grpc"}),
]


def any_value(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": str(v)}


def kvs(attrs):
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


def resource(service):
    info = SERVICES[service]
    return {
        "attributes": kvs(
            {
                "service.name": service,
                "service.version": info["version"],
                "deployment.environment.name": "production",
                "host.name": info["host"],
            }
        )
    }


def otlp_span(s):
    trace, sid, parent, _svc, name, kind, start, end, err, attrs = s
    span = {
        "traceId": trace,
        "spanId": sid,
        "name": name,
        "kind": KIND[kind],
        "startTimeUnixNano": str(T0 + start * MS),
        "endTimeUnixNano": str(T0 + end * MS),
        "attributes": kvs(attrs),
        "status": {"code": 2, "message": err} if err else {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def resource_spans(service, spans):
    return {
        "resource": resource(service),
        "scopeSpans": [{"scope": {"name": "shop-instrumentation", "version": "1.0.0"}, "spans": [otlp_span(s) for s in spans]}],
    }


def otlp_request():
    """One ExportTraceServiceRequest, one ResourceSpans per service."""
    return {"resourceSpans": [resource_spans(svc, [s for s in SPANS if s[3] == svc]) for svc in SERVICES]}


def otlp_lines():
    """The Collector's file exporter: one TracesData per line, one per trace and service."""
    lines = []
    for trace in (TRACE_A, TRACE_B):
        for svc in SERVICES:
            spans = [s for s in SPANS if s[0] == trace and s[3] == svc]
            if spans:
                lines.append({"resourceSpans": [resource_spans(svc, spans)]})
    return lines


def jaeger():
    traces = []
    for trace in (TRACE_A, TRACE_B):
        spans = [s for s in SPANS if s[0] == trace]
        procs = {}
        out = []
        for trace_id, sid, parent, svc, name, kind, start, end, err, attrs in spans:
            pid = "p%d" % (list(SERVICES).index(svc) + 1)
            info = SERVICES[svc]
            procs[pid] = {
                "serviceName": svc,
                "tags": [
                    {"key": "hostname", "type": "string", "value": info["host"]},
                    {"key": "service.version", "type": "string", "value": info["version"]},
                ],
            }
            tags = [{"key": "span.kind", "type": "string", "value": kind}]
            for k, v in attrs.items():
                tags.append({"key": k, "type": "int64" if isinstance(v, int) else "string", "value": v})
            if err:
                tags.append({"key": "error", "type": "bool", "value": True})
                tags.append({"key": "otel.status_description", "type": "string", "value": err})
            out.append(
                {
                    "traceID": trace_id,
                    "spanID": sid,
                    "operationName": name,
                    "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}] if parent else [],
                    "startTime": (T0 + start * MS) // 1000,
                    "duration": (end - start) * 1000,
                    "tags": tags,
                    "logs": [],
                    "processID": pid,
                    "warnings": None,
                }
            )
        traces.append({"traceID": trace, "spans": out, "processes": procs, "warnings": None})
    return {"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None}


def zipkin():
    out = []
    for trace_id, sid, parent, svc, name, kind, start, end, err, attrs in SPANS:
        span = {
            "traceId": trace_id,
            "id": sid,
            "name": name.lower(),
            "timestamp": (T0 + start * MS) // 1000,
            "duration": (end - start) * 1000,
            "localEndpoint": {"serviceName": svc, "ipv4": "10.0.0.%d" % (list(SERVICES).index(svc) + 1)},
            "tags": {k: str(v) for k, v in attrs.items()},
        }
        if parent:
            span["parentId"] = parent
        if kind != "internal":
            span["kind"] = kind.upper()
        if err:
            span["tags"]["error"] = err
        out.append(span)
    # Zipkin dumps come in any order.
    return list(reversed(out))


def damaged_lines():
    """JSON lines with one instance of each kind of damage; see README.md."""
    def res(svc):
        return {"attributes": kvs({"service.name": svc})}

    def span(trace, sid, parent, name, start, end, **extra):
        s = {"traceId": trace, "spanId": sid, "name": name, "kind": "SPAN_KIND_SERVER"}
        if parent is not None:
            s["parentSpanId"] = parent
        if start is not None:
            s["startTimeUnixNano"] = str(T0 + start)
        if end is not None:
            s["endTimeUnixNano"] = str(T0 + end)
        s.update(extra)
        return s

    def line(svc, *spans):
        return json.dumps({"resourceSpans": [{"resource": res(svc), "scopeSpans": [{"spans": list(spans)}]}]})

    t1 = "11111111111111111111111111111111"
    t2 = "22222222222222222222222222222222"
    return [
        # 1: good: root and child.
        line("api", span(t1, "1000000000000001", None, "root", 0, 100 * MS), span(t1, "1000000000000002", "1000000000000001", "child", 10 * MS, 20 * MS)),
        # 2: broken record (cut short): skipped, counted as bad_record.
        '{"resourceSpans": [{"resource": {"attributes": [',
        # 3: exact duplicate of the child (dropped) and a different span reusing its id (re-identified).
        line("api", span(t1, "1000000000000002", "1000000000000001", "child", 10 * MS, 20 * MS), span(t1, "1000000000000002", "1000000000000001", "impostor", 30 * MS, 40 * MS)),
        # 4: timing damage: no start, zero duration, negative duration.
        line("worker", span(t1, "1000000000000003", "1000000000000001", "no-start", None, 50 * MS), span(t1, "1000000000000004", "1000000000000001", "instant", 60 * MS, 60 * MS), span(t1, "1000000000000005", "1000000000000001", "backwards", 70 * MS, 65 * MS)),
        # 5: ids that are not hex: mapped to stable hashes, relations kept.
        line("legacy", span("not-a-hex-trace", "span-A", None, "opaque root", 0, 10 * MS), span("not-a-hex-trace", "span-B", "span-A", "opaque child", 1 * MS, 5 * MS)),
        # 6: empty trace id and all-zero span id.
        line("broken", span("", "1000000000000006", None, "no trace id", 0, 5 * MS), span(t1, "0000000000000000", "1000000000000001", "zero span id", 1 * MS, 2 * MS)),
        # 7: parent that is not in the dump.
        line("api", span(t1, "1000000000000007", "ffffffffffffffff", "orphan", 80 * MS, 90 * MS)),
        # 8: a parent cycle in its own trace.
        line("loop", span(t2, "2000000000000001", "2000000000000002", "ping", 0, 10 * MS), span(t2, "2000000000000002", "2000000000000001", "pong", 1 * MS, 9 * MS)),
        "",
    ]


def to_proto_json(doc):
    """OTLP/JSON writes ids as hex, but protobuf's generic JSON mapping reads
    bytes as base64: convert ids before handing the document to json_format."""
    if isinstance(doc, list):
        return [to_proto_json(x) for x in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for k, v in doc.items():
        if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
            v = base64.b64encode(bytes.fromhex(v)).decode()
        out[k] = to_proto_json(v)
    return out


def graph_edge_lines():
    """One trace per line, each exercising one way edges form; see README.md."""
    def kv(**attrs):
        return kvs({k.replace("__", "."): v for k, v in attrs.items()})

    def span(trace, sid, parent, name, kind, start_ms, end_ms, attrs=None, error=False, links=None):
        s = {
            "traceId": trace,
            "spanId": sid,
            "name": name,
            "kind": KIND[kind],
            "startTimeUnixNano": str(T0 + start_ms * MS),
            "endTimeUnixNano": str(T0 + end_ms * MS),
            "attributes": attrs or [],
        }
        if parent:
            s["parentSpanId"] = parent
        if error:
            s["status"] = {"code": 2, "message": "failed"}
        if links:
            s["links"] = [{"traceId": t, "spanId": i} for t, i in links]
        return s

    def line(*groups):
        return json.dumps({"resourceSpans": [
            {"resource": {"attributes": kvs({"service.name": svc})}, "scopeSpans": [{"spans": list(spans)}]}
            for svc, spans in groups
        ]})

    t = lambda n: "%032x" % (0xE0000000000000000000000000000000 + n)
    i = lambda n: "%016x" % (0xE000000000000000 + n)
    return [
        # T1: producer and consumer in one trace.
        line(("orders", [span(t(1), i(1), None, "POST /order", "server", 0, 10),
                         span(t(1), i(2), i(1), "orders publish", "producer", 2, 3, kv(messaging__system="kafka"))]),
             ("billing", [span(t(1), i(3), i(2), "orders process", "consumer", 20, 32)])),
        # T3 (consumer first) links to a producer in T2 (next line).
        line(("shipping", [span(t(3), i(5), None, "orders process", "consumer", 50, 65, links=[(t(2), i(4))])])),
        line(("orders", [span(t(2), i(6), None, "POST /order", "server", 30, 40),
                         span(t(2), i(4), i(6), "orders publish", "producer", 31, 32, kv(messaging__system="kafka"))])),
        # T4: database calls named four ways, one failing.
        line(("inventory", [
            span(t(4), i(10), None, "GET /stock", "server", 0, 50),
            span(t(4), i(11), i(10), "SELECT stock", "client", 1, 5, kv(db__system="postgresql", db__namespace="stock", server__address="pg-main")),
            span(t(4), i(12), i(10), "GET", "client", 6, 7, kv(db__system="redis")),
            span(t(4), i(13), i(10), "SELECT items", "client", 8, 12, kv(db__system="mysql", network__peer__address="10.0.0.5", network__peer__port=3306), error=True),
            span(t(4), i(14), i(10), "query", "client", 13, 20, kv(peer__service="sql-proxy", db__name="x")),
        ])),
        # T5: virtual nodes and an unpaired client.
        line(("gateway", [
            span(t(5), i(20), None, "GET /", "server", 0, 30, kv(peer__service="edge-lb")),
            span(t(5), i(21), i(20), "charge", "client", 1, 9, kv(peer__service="payments-api")),
            span(t(5), i(22), i(20), "mystery", "client", 10, 12),
            span(t(5), i(23), i(20), "events publish", "producer", 13, 14, kv(messaging__system="rabbitmq")),
        ])),
        # T6: a server whose parent is not in the dump.
        line(("worker", [span(t(6), i(30), "ffffffffffffffff", "job", "server", 0, 5)])),
        # T7: one client span answered by two servers.
        line(("api", [span(t(7), i(40), None, "GET /x", "server", 0, 20),
                      span(t(7), i(41), i(40), "fetch", "client", 1, 15)]),
             ("backend", [span(t(7), i(42), i(41), "fetch", "server", 2, 12),
                          span(t(7), i(43), i(41), "fetch", "server", 3, 13)])),
        "",
    ]


def kindless_jaeger():
    """A Jaeger trace with no span.kind tags: edges come from service changes."""
    trace = "f0000000000000000000000000000001"
    def span(sid, parent, name, pid, start, dur, tags=None):
        return {"traceID": trace, "spanID": sid, "operationName": name,
                "references": [{"refType": "CHILD_OF", "traceID": trace, "spanID": parent}] if parent else [],
                "startTime": (T0 // 1000) + start, "duration": dur, "tags": tags or [], "logs": [], "processID": pid}
    spans = [
        span("f000000000000001", None, "GET /", "p1", 0, 50000),
        span("f000000000000002", "f000000000000001", "handle", "p2", 1000, 40000),
        span("f000000000000003", "f000000000000002", "compute", "p2", 2000, 10000),
        span("f000000000000004", "f000000000000003", "get", "p2", 3000, 2000,
             [{"key": "peer.service", "type": "string", "value": "cache"}]),
        span("f000000000000005", "f000000000000002", "report", "p3", 20000, 5000,
             [{"key": "error", "type": "bool", "value": True}]),
    ]
    procs = {"p1": {"serviceName": "web", "tags": []}, "p2": {"serviceName": "api", "tags": []},
             "p3": {"serviceName": "metrics", "tags": []}}
    return {"data": [{"traceID": trace, "spans": spans, "processes": procs}]}


def length_prefixed(messages, compress):
    out = bytearray()
    cctx = zstandard.ZstdCompressor()
    for m in messages:
        payload = m.SerializeToString()
        if compress:
            payload = cctx.compress(payload)
        out += struct.pack(">I", len(payload)) + payload
    return bytes(out)


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, name), mode) as f:
        f.write(data)


def main():
    request = otlp_request()
    write("shop.otlp.json", json.dumps(request, indent=2) + "\n")
    lines = otlp_lines()
    write("shop.otlp.jsonl", "".join(json.dumps(l) + "\n" for l in lines))
    pb = json_format.ParseDict(to_proto_json(request), ExportTraceServiceRequest())
    write("shop.otlp.pb", pb.SerializeToString())
    records = [json_format.ParseDict(to_proto_json(l), TracesData()) for l in lines]
    write("shop.otlp-stream.bin", length_prefixed(records, compress=False))
    write("shop.otlp-stream-zstd.bin", length_prefixed(records, compress=True))
    write("shop.jaeger.json", json.dumps(jaeger(), indent=1) + "\n")
    write("shop.zipkin.json", json.dumps(zipkin(), indent=1) + "\n")
    write("shop.otlp.json.gz", gzip.compress(json.dumps(request).encode(), mtime=0))
    write("shop.zipkin.json.zst", zstandard.ZstdCompressor().compress(json.dumps(zipkin()).encode()))
    write("damaged.otlp.jsonl", "\n".join(damaged_lines()))
    write("graph-edges.otlp.jsonl", "\n".join(graph_edge_lines()))
    write("graph-kindless.jaeger.json", json.dumps(kindless_jaeger(), indent=1) + "\n")


if __name__ == "__main__":
    main()
