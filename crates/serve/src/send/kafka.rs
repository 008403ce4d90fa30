//! Writing spans to a Kafka topic the way the OpenTelemetry Collector's
//! `kafka` exporter writes them (`encoding: otlp_proto`): each record an
//! OTLP `TracesData` message (wire-identical to `ExportTraceServiceRequest`)
//! of one service's spans. With `partition_traces_by_id` (the default
//! here) a record holds one trace's spans and its key is the trace id as 32
//! lowercase hex characters, so a trace's records share a partition;
//! without it records carry no key and mix the traces of one service, as a
//! Collector batching an SDK's exports would.

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rustc_hash::FxHashMap;

use tracelens_core::model::{Dictionary, ResourceId, Span};

use super::Batcher;

/// Why writing to Kafka failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSendError {
    /// The producer could not be created.
    #[error("kafka producer: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// A record was not acknowledged.
    #[error("writing to kafka topic {topic}: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
}

/// Records written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written {
    /// Records.
    pub records: u64,
    /// Spans in them.
    pub spans: u64,
}

/// A producer writing spans as the Collector's exporter does.
pub struct KafkaSender {
    producer: FutureProducer,
    topic: String,
    by_trace_id: bool,
    /// Without trace-id keys: a batch per service.
    batches: FxHashMap<ResourceId, Batcher>,
    batch_spans: usize,
    /// Records handed to the producer, not yet acknowledged, oldest first.
    in_flight: std::collections::VecDeque<(DeliveryFuture, usize)>,
    /// What was written (acknowledged).
    pub written: Written,
    /// Spans handed to the producer (acknowledged or not).
    pub queued_spans: u64,
}

/// Records awaiting acknowledgement before the oldest is waited for.
const IN_FLIGHT: usize = 10_000;

impl KafkaSender {
    /// A producer to `topic` on `brokers` (acks from every in-sync replica).
    pub fn new(
        brokers: &str,
        topic: &str,
        by_trace_id: bool,
        batch_spans: usize,
    ) -> Result<KafkaSender, KafkaSendError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .map_err(KafkaSendError::Client)?;
        Ok(KafkaSender {
            producer,
            topic: topic.to_string(),
            by_trace_id,
            batches: FxHashMap::default(),
            batch_spans,
            in_flight: std::collections::VecDeque::new(),
            written: Written::default(),
            queued_spans: 0,
        })
    }

    /// Writes one trace's spans: a record per service.
    pub async fn send_trace(&mut self, dict: &Dictionary, spans: &[Span]) -> Result<(), KafkaSendError> {
        let mut by_resource: Vec<(ResourceId, Vec<Span>)> = Vec::new();
        for s in spans {
            match by_resource.iter_mut().find(|(r, _)| *r == s.resource) {
                Some((_, group)) => group.push(s.clone()),
                None => by_resource.push((s.resource, vec![s.clone()])),
            }
        }
        for (resource, group) in by_resource {
            if self.by_trace_id {
                let mut batcher = Batcher::new(usize::MAX);
                batcher.add(dict, &group);
                if let Some((request, n)) = batcher.finish() {
                    let key = group[0].trace_id.to_hex();
                    self.write(Some(&key), request.encode_to_vec(), n).await?;
                }
            } else {
                let batch_spans = self.batch_spans;
                let batcher = self.batches.entry(resource).or_insert_with(|| Batcher::new(batch_spans));
                if let Some((request, n)) = batcher.add(dict, &group) {
                    self.write(None, request.encode_to_vec(), n).await?;
                }
            }
        }
        Ok(())
    }

    /// Writes what is still batched and waits for every acknowledgement.
    pub async fn finish(&mut self) -> Result<(), KafkaSendError> {
        let pending: Vec<_> = self.batches.values_mut().filter_map(Batcher::finish).collect();
        for (request, n) in pending {
            self.write(None, request.encode_to_vec(), n).await?;
        }
        while !self.in_flight.is_empty() {
            self.acknowledge_oldest().await?;
        }
        Ok(())
    }

    /// Hands a record to the producer (records are written in order; up
    /// to [`IN_FLIGHT`] wait for their acknowledgement at once).
    async fn write(&mut self, key: Option<&str>, value: Vec<u8>, spans: usize) -> Result<(), KafkaSendError> {
        loop {
            let mut record = FutureRecord::<str, Vec<u8>>::to(&self.topic).payload(&value);
            if let Some(key) = key {
                record = record.key(key);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push_back((delivery, spans));
                    self.queued_spans += spans as u64;
                    break;
                }
                Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if !self.in_flight.is_empty() =>
                {
                    self.acknowledge_oldest().await?;
                }
                Err((source, _)) => return Err(KafkaSendError::Produce { topic: self.topic.clone(), source }),
            }
        }
        if self.in_flight.len() >= IN_FLIGHT {
            self.acknowledge_oldest().await?;
        }
        Ok(())
    }

    async fn acknowledge_oldest(&mut self) -> Result<(), KafkaSendError> {
        let Some((delivery, spans)) = self.in_flight.pop_front() else { return Ok(()) };
        let produce = |source| KafkaSendError::Produce { topic: self.topic.clone(), source };
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => return Err(produce(source)),
            Err(_) => return Err(produce(rdkafka::error::KafkaError::Canceled)),
        }
        self.written.records += 1;
        self.written.spans += spans as u64;
        Ok(())
    }
}
