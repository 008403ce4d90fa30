"""Sends a known multi-service topology to tracelens with the real
OpenTelemetry Python SDK exporters (the interop test's client).

Topology per request i (one trace each):
  web     SERVER "GET /order"         (root: the graph shows user -> web)
  web     CLIENT "POST /orders"     -> orders SERVER "POST /orders"   (failed when i % 5 == 0)
  orders  CLIENT "INSERT orders"       db.system=postgresql, server.address=pg-orders  (database edge)
  orders  PRODUCER "orders publish" -> billing CONSUMER "orders process"  (messaging edge)

Exit status 0 only if every export call reported SUCCESS.

Usage: send_topology.py --protocol grpc|http --endpoint URL --traces N
       [--compression none|gzip|deflate] [--ca-file PEM]

With --ca-file the exporters speak TLS and trust only that certificate.
"""

import argparse
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class Recording(SpanExporter):
    """Wraps an exporter and remembers every export result."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporter(protocol, endpoint, compression, ca_file):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        import grpc
        compression = {"none": None, "gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}[compression]
        if ca_file:
            with open(ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            return OTLPSpanExporter(endpoint=endpoint, insecure=False, credentials=credentials, compression=compression)
        return OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=compression)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http import Compression
    return OTLPSpanExporter(
        endpoint=endpoint + "/v1/traces",
        certificate_file=ca_file,
        compression={"none": Compression.NoCompression, "gzip": Compression.Gzip, "deflate": Compression.Deflate}[compression],
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--traces", type=int, default=20)
    ap.add_argument("--compression", choices=["none", "gzip", "deflate"], default="none")
    ap.add_argument("--ca-file")
    args = ap.parse_args()

    recorders = []
    tracers = {}
    providers = []
    for service in ["web", "orders", "billing"]:
        provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "1.0.0"}))
        rec = Recording(exporter(args.protocol, args.endpoint, args.compression, args.ca_file))
        recorders.append(rec)
        provider.add_span_processor(BatchSpanProcessor(rec, max_export_batch_size=50))
        providers.append(provider)
        tracers[service] = provider.get_tracer("interop")

    for i in range(args.traces):
        with tracers["web"].start_as_current_span("GET /order", kind=SpanKind.SERVER):
            with tracers["web"].start_as_current_span("POST /orders", kind=SpanKind.CLIENT) as client:
                ctx = trace.set_span_in_context(client)
                with tracers["orders"].start_as_current_span("POST /orders", context=ctx, kind=SpanKind.SERVER) as server:
                    with tracers["orders"].start_as_current_span(
                        "INSERT orders",
                        kind=SpanKind.CLIENT,
                        attributes={"db.system": "postgresql", "server.address": "pg-orders"},
                    ):
                        pass
                    with tracers["orders"].start_as_current_span(
                        "orders publish", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}
                    ) as producer:
                        pctx = trace.set_span_in_context(producer)
                        with tracers["billing"].start_as_current_span("orders process", context=pctx, kind=SpanKind.CONSUMER):
                            pass
                    if i % 5 == 0:
                        server.set_status(Status(StatusCode.ERROR, "order rejected"))
                if i % 5 == 0:
                    client.set_status(Status(StatusCode.ERROR, "order rejected"))

    for p in providers:
        p.force_flush()
        p.shutdown()
    results = [r for rec in recorders for r in rec.results]
    failed = [r for r in results if r != SpanExportResult.SUCCESS]
    print(f"exports: {len(results)}, failed: {len(failed)}")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
