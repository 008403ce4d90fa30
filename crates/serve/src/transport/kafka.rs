//! The Kafka transport: `tracelens serve --kafka-brokers …` as one member
//! of a consumer group reading the topic the OpenTelemetry Collector's
//! `kafka` exporter writes (`otlp_proto` or `otlp_json` values, keyed by
//! trace id with `partition_traces_by_id`), and as a reader of the results
//! topic every member publishes its partials to.
//!
//! Two loops share the live state:
//! * the results reader reads the whole results topic from the start and
//!   applies each partial ([`Live::apply_partial`]); it is what every
//!   query, verdict and `/metrics` answer is built from, and the instance
//!   is ready once it has caught up with the topic's end as of its start;
//! * the partition worker consumes the spans topic in the group. For each
//!   partition it is assigned it publishes a claim, waits until the results
//!   reader has read past it, and resumes at the group's committed offset
//!   skipping the spans already counted ([`PartitionWork`]). Each
//!   publish interval it publishes, per partition, a partial of the traces
//!   completed (acks from every in-sync replica), and only then commits the
//!   offset of the first record of its oldest open trace. Traces go idle
//!   on a clock that stops while the worker is not reading (publishing,
//!   committing, claiming) and, per partition, while it is paused: the
//!   records waiting meanwhile may hold the next spans of an open trace.
//!
//! Deployment markers recorded on one member go to the results topic too,
//! and every member records them: verdicts judge by the same deploys.
//!
//! Records that do not decode are counted, logged with topic, partition and
//! offset, and passed over.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::{Notify, watch};

use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::partial::pb;

use crate::clock::Clock;
use crate::cluster::{GroupStatus as KafkaStatus, PartialConfig, PartitionWork};
use crate::gate::Deployment;
use crate::ingest::{BodyEncoding, IdRule, accept_bytes};
use crate::live::Live;
use crate::service::Service;

/// How a receiver joins a consumer group.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic the Collectors write spans to.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// The topic partials are published to and read from.
    pub results_topic: String,
    /// How often each partition's completed traces are published.
    pub publish_interval: Duration,
    /// A stable identity in the group (Kafka's static membership,
    /// `group.instance.id`: a StatefulSet pod's name): a member restarted
    /// under the same identity takes its partitions back without a
    /// rebalance of the others.
    pub instance_id: Option<String>,
}

/// Why the Kafka transport stopped.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The Kafka client failed.
    #[error("kafka {what}: {source}")]
    Client {
        /// What it was doing.
        what: &'static str,
        /// The client's error.
        source: ClientError,
    },
    /// A loop's task failed.
    #[error("kafka {0} task: {1}")]
    Task(&'static str, tokio::task::JoinError),
}

fn client(what: &'static str) -> impl FnOnce(ClientError) -> KafkaError {
    move |source| KafkaError::Client { what, source }
}

/// How far the results reader has read, per results partition.
#[derive(Default)]
struct ReadUpTo {
    next: Mutex<BTreeMap<i32, i64>>,
    moved: Notify,
}

impl ReadUpTo {
    fn advance(&self, partition: i32, next: i64) {
        let mut map = self.next.lock().expect("read-up-to lock");
        let e = map.entry(partition).or_insert(0);
        *e = (*e).max(next);
        drop(map);
        self.moved.notify_waiters();
    }

    /// Waits until the record at (partition, offset) has been read.
    async fn wait_past(&self, partition: i32, offset: i64) {
        loop {
            let moved = self.moved.notified();
            if self.next.lock().expect("read-up-to lock").get(&partition).is_some_and(|&n| n > offset) {
                return;
            }
            moved.await;
        }
    }
}

/// Creates the results topic if it does not exist yet (one partition: one
/// order every reader sees).
async fn ensure_results_topic(config: &KafkaConfig) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &config.brokers).create().map_err(client("admin client"))?;
    let topic = NewTopic::new(&config.results_topic, 1, TopicReplication::Fixed(1));
    let results =
        admin.create_topics(&[topic], &AdminOptions::new()).await.map_err(client("creating the results topic"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::Client {
                    what: "creating the results topic",
                    source: ClientError::AdminOp(code),
                })
                .inspect_err(|_| eprintln!("tracelens: kafka: creating {topic}: {code}"));
            }
        }
    }
    Ok(())
}

/// What the transport works with.
pub struct Parts {
    /// The service (deployment markers of the group go to it).
    pub service: Arc<Service>,
    /// Live analysis, which the group's partials feed.
    pub live: Arc<Mutex<Live>>,
    /// How partials are built.
    pub partials: PartialConfig,
    /// A trace is complete once no span arrived for this long, ms.
    pub idle_ms: u64,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// What `/readyz` and `/metrics` report.
    pub status: Arc<KafkaStatus>,
}

/// Runs the transport until `stop` turns true.
pub async fn run(config: KafkaConfig, parts: Parts, stop: watch::Receiver<bool>) -> Result<(), KafkaError> {
    ensure_results_topic(&config).await?;
    parts.live.lock().expect("live lock").start_cluster();
    let read = Arc::new(ReadUpTo::default());
    let reader = tokio::spawn(read_results(
        config.clone(),
        parts.service.clone(),
        parts.live.clone(),
        read.clone(),
        parts.status.clone(),
        stop.clone(),
    ));
    let worker = Worker::new(&config, parts, read)?;
    let worker = tokio::spawn(worker.run(stop));
    reader.await.map_err(|e| KafkaError::Task("results reader", e))??;
    worker.await.map_err(|e| KafkaError::Task("partition worker", e))??;
    Ok(())
}

/// Reads the whole results topic into live analysis.
async fn read_results(
    config: KafkaConfig,
    service: Arc<Service>,
    live: Arc<Mutex<Live>>,
    read: Arc<ReadUpTo>,
    status: Arc<KafkaStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), KafkaError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", format!("{}-results-reader", config.group))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(client("results consumer"))?;
    let timeout = Duration::from_secs(10);
    let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(&config.results_topic), timeout))
        .map_err(client("reading the results topic's metadata"))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for &p in &partitions {
        assignment.add_partition_offset(&config.results_topic, p, Offset::Beginning).map_err(client("assigning"))?;
        let (_, high) = tokio::task::block_in_place(|| consumer.fetch_watermarks(&config.results_topic, p, timeout))
            .map_err(client("reading the results topic's end"))?;
        ends.insert(p, high);
    }
    consumer.assign(&assignment).map_err(client("assigning the results topic"))?;
    let mut position: BTreeMap<i32, i64> = partitions.iter().map(|&p| (p, 0)).collect();
    let caught_up =
        |position: &BTreeMap<i32, i64>| ends.iter().all(|(p, &end)| position.get(p).is_some_and(|&n| n >= end));
    if caught_up(&position) {
        status.caught_up.store(true, Ordering::Relaxed);
    }
    loop {
        let message = tokio::select! {
            m = consumer.recv() => m,
            _ = stop.wait_for(|v| *v) => return Ok(()),
        };
        match message {
            Ok(m) => {
                let (p, offset) = (m.partition(), m.offset());
                match m.payload().map(pb::Partial::decode) {
                    Some(Ok(partial)) => {
                        if let Err(e) = live.lock().expect("live lock").apply_partial(&partial) {
                            eprintln!("tracelens: kafka: {} partition {p} offset {offset}: {e}", config.results_topic);
                        }
                        for d in partial.deployments {
                            let marker =
                                Deployment { service: d.service, version: d.version, time_unix_nano: d.time_unix_nano };
                            if let Err(e) = service.apply_group_deployment(marker) {
                                eprintln!("tracelens: kafka: a deployment marker of the group: {e}");
                            }
                        }
                    }
                    Some(Err(e)) => {
                        eprintln!(
                            "tracelens: kafka: {} partition {p} offset {offset}: not a partial: {e}",
                            config.results_topic
                        )
                    }
                    None => {}
                }
                position.insert(p, offset + 1);
                read.advance(p, offset + 1);
            }
            Err(ClientError::PartitionEOF(p)) => {
                let end = ends.get(&p).copied().unwrap_or(0);
                let at = position.entry(p).or_insert(0);
                *at = (*at).max(end);
            }
            Err(e) => eprintln!("tracelens: kafka: reading {}: {e}", config.results_topic),
        }
        if !status.caught_up.load(Ordering::Relaxed) && caught_up(&position) {
            status.caught_up.store(true, Ordering::Relaxed);
        }
    }
}

/// Rebalances seen by the consumer's callbacks, for the worker to act on.
struct GroupContext {
    events: Mutex<Vec<GroupEvent>>,
    status: Arc<KafkaStatus>,
}

enum GroupEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.events.lock().expect("events lock").push(GroupEvent::Revoked(partitions_of(list)));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.status.rebalances.fetch_add(1, Ordering::Relaxed);
                // Nothing is read from a new partition before its claim.
                if let Err(e) = consumer.pause(list) {
                    eprintln!("tracelens: kafka: pausing new partitions: {e}");
                }
                self.events.lock().expect("events lock").push(GroupEvent::Assigned(partitions_of(list)));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => eprintln!("tracelens: kafka: rebalance: {e}"),
        }
    }
}

/// A partition's work and the commit it still owes.
struct Owned {
    work: PartitionWork,
    /// An offset published but not yet committed: no partial is published
    /// before it is.
    pending_commit: Option<u64>,
    /// Reading time (see [`Worker::reading_ms`]) when the partition was
    /// paused for a commit that failed, while it is.
    paused_since: Option<u64>,
    /// Reading time the partition spent paused before that.
    paused_ms: u64,
}

impl Owned {
    fn new(work: PartitionWork) -> Owned {
        Owned { work, pending_commit: None, paused_since: None, paused_ms: 0 }
    }

    /// The partition's own clock at reading time `reading_ms`: reading time
    /// less the time it was paused. Its traces go idle on this clock, so
    /// none closes while its next spans wait unread.
    fn clock_ms(&self, reading_ms: u64) -> u64 {
        let paused = self.paused_ms + self.paused_since.map_or(0, |since| reading_ms.saturating_sub(since));
        reading_ms.saturating_sub(paused)
    }
}

/// The consumer-group member.
struct Worker {
    config: KafkaConfig,
    consumer: StreamConsumer<GroupContext>,
    producer: FutureProducer,
    live: Arc<Mutex<Live>>,
    partials: PartialConfig,
    idle_ms: u64,
    clock: Arc<dyn Clock>,
    status: Arc<KafkaStatus>,
    read: Arc<ReadUpTo>,
    owned: BTreeMap<i32, Owned>,
    /// Assigned partitions whose claim did not go through yet (retried
    /// every publish interval; paused meanwhile).
    unclaimed: std::collections::BTreeSet<i32>,
    dict: Dictionary,
    warnings: Warnings,
    /// This process's claims: `<group member>-<n>`.
    claim_prefix: String,
    claims: u64,
    /// Clock time spent not reading (publishing, committing, claiming,
    /// measuring lag): see [`Worker::reading_ms`].
    stalled_ms: u64,
}

impl Worker {
    fn new(config: &KafkaConfig, parts: Parts, read: Arc<ReadUpTo>) -> Result<Worker, KafkaError> {
        let Parts { live, partials, idle_ms, clock, status, .. } = parts;
        let context = GroupContext { events: Mutex::new(Vec::new()), status: status.clone() };
        let mut settings = ClientConfig::new();
        settings
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000");
        if let Some(id) = &config.instance_id {
            settings.set("group.instance.id", id);
        }
        let consumer: StreamConsumer<GroupContext> =
            settings.create_with_context(context).map_err(client("group consumer"))?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.max.bytes", "100000000")
            .create()
            .map_err(client("results producer"))?;
        let claim_prefix = format!("{}-{}-{}", hostname(), std::process::id(), clock.now_ns());
        Ok(Worker {
            config: config.clone(),
            consumer,
            producer,
            live,
            partials,
            idle_ms,
            clock,
            status,
            read,
            owned: BTreeMap::new(),
            unclaimed: Default::default(),
            dict: Dictionary::default(),
            warnings: Warnings::default(),
            claim_prefix,
            claims: 0,
            stalled_ms: 0,
        })
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), KafkaError> {
        // Claims wait for the results reader to catch up, so a member
        // starts from the group's state, not from nothing.
        while !self.status.caught_up.load(Ordering::Relaxed) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.wait_for(|v| *v) => return Ok(()),
            }
        }
        self.consumer.subscribe(&[&self.config.topic]).map_err(client("subscribing"))?;
        let stopped = async move {
            let _ = stop.wait_for(|v| *v).await;
        };
        tokio::pin!(stopped);
        let mut publish = tokio::time::interval(self.config.publish_interval);
        let mut lag = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                m = self.consumer.recv() => {
                    match m {
                        Ok(m) => {
                            let (p, offset) = (m.partition(), m.offset());
                            let payload = m.payload().map(<[u8]>::to_vec);
                            drop(m);
                            self.record(p, offset, payload.as_deref());
                        }
                        Err(e) => eprintln!("tracelens: kafka: reading {}: {e}", self.config.topic),
                    }
                }
                _ = publish.tick() => {
                    let started = self.clock.now_ms();
                    self.publish().await;
                    self.stalled_ms += self.clock.now_ms().saturating_sub(started);
                }
                _ = lag.tick() => {
                    let started = self.clock.now_ms();
                    self.measure_lag();
                    self.stalled_ms += self.clock.now_ms().saturating_sub(started);
                }
                _ = &mut stopped => break,
            }
            let started = self.clock.now_ms();
            self.handle_events().await?;
            self.stalled_ms += self.clock.now_ms().saturating_sub(started);
        }
        // Leave the group: what was published is committed; the rest is
        // read again by the partitions' next owners.
        self.publish().await;
        self.consumer.unsubscribe();
        Ok(())
    }

    /// The clock traces go idle on: clock time less the time this worker
    /// spent not reading. While it publishes, commits or claims (seconds,
    /// on a slow broker) the records behind the ones it read wait unread,
    /// so that time cannot make a trace idle: a trace whose next span is
    /// among them would be cut in two.
    fn reading_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.stalled_ms)
    }

    /// One record of the spans topic.
    fn record(&mut self, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let reading = self.reading_ms();
        let Some(owned) = self.owned.get_mut(&partition) else {
            // Read before its claim was ready: read again after it.
            let _ = self.consumer.seek(&self.config.topic, partition, Offset::Offset(offset), Duration::from_secs(1));
            return;
        };
        let offset = offset as u64;
        let body = payload.unwrap_or_default();
        let encoding = match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => BodyEncoding::Json,
            _ => BodyEncoding::Protobuf,
        };
        match accept_bytes(body, encoding, IdRule::Exact, &mut self.dict, &mut self.warnings) {
            Ok(accepted) => {
                owned.work.record(offset, accepted.spans, owned.clock_ms(reading), self.partials.max_open_spans)
            }
            Err(e) => {
                eprintln!(
                    "tracelens: kafka: {} partition {partition} offset {offset}: skipped, not OTLP traces: {e}",
                    self.config.topic
                );
                owned.work.undecodable(offset);
            }
        }
    }

    /// Publishes each partition's completed traces, then commits; claims
    /// again what could not be claimed; shares the deployment markers
    /// recorded here.
    async fn publish(&mut self) {
        let markers = std::mem::take(&mut *self.status.outbox.lock().expect("outbox lock"));
        if !markers.is_empty() {
            let partial = pb::Partial {
                format: tracelens_core::partial::FORMAT_VERSION,
                deployments: markers
                    .iter()
                    .map(|d| pb::DeploymentMarker {
                        service: d.service.clone(),
                        version: d.version.clone(),
                        time_unix_nano: d.time_unix_nano,
                    })
                    .collect(),
                ..Default::default()
            };
            if self.send(-1, &partial).await.is_none() {
                // Tried again at the next publish.
                self.status.outbox.lock().expect("outbox lock").extend(markers);
            }
        }
        for p in std::mem::take(&mut self.unclaimed) {
            self.reclaim(p).await;
        }
        let now = self.clock.now_ms();
        let reading = self.reading_ms();
        let partitions: Vec<i32> = self.owned.keys().copied().collect();
        for p in partitions {
            if !self.commit_pending(p, reading) {
                continue;
            }
            let Some(owned) = self.owned.get_mut(&p) else { continue };
            owned.work.tick(owned.clock_ms(reading), self.idle_ms);
            let Some((partial, commit)) = owned.work.take_partial(&self.dict, &self.partials, now) else { continue };
            if self.send(p, &partial).await.is_none() {
                // Not published: drop the work, claim the partition again.
                self.owned.remove(&p);
                self.reclaim(p).await;
                continue;
            }
            self.status.published.fetch_add(1, Ordering::Relaxed);
            if let Some(owned) = self.owned.get_mut(&p) {
                owned.pending_commit = Some(commit);
            }
            self.commit_pending(p, reading);
        }
    }

    /// Commits what a partition owes, at reading time `reading`; whether
    /// nothing is owed any more.
    fn commit_pending(&mut self, partition: i32, reading: u64) -> bool {
        let Some(owned) = self.owned.get_mut(&partition) else { return false };
        let Some(offset) = owned.pending_commit else { return true };
        let mut list = TopicPartitionList::new();
        if list.add_partition_offset(&self.config.topic, partition, Offset::Offset(offset as i64)).is_err() {
            return false;
        }
        match tokio::task::block_in_place(|| self.consumer.commit(&list, CommitMode::Sync)) {
            Ok(()) => {
                owned.pending_commit = None;
                if let Some(since) = owned.paused_since.take() {
                    owned.paused_ms += reading.saturating_sub(since);
                }
                let _ = self.consumer.resume(&list);
                true
            }
            Err(e) => {
                // Nothing more is read until the commit goes through, so
                // the traces waiting to be published stay bounded.
                let _ = self.consumer.pause(&list);
                owned.paused_since.get_or_insert(reading);
                self.status.commit_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("tracelens: kafka: committing {} partition {partition} at {offset}: {e}", self.config.topic);
                false
            }
        }
    }

    /// Publishes a partial keyed by its source partition (so claims and
    /// data of one partition keep their order; -1: no partition, deployment
    /// markers); the results partition and offset it landed at.
    async fn send(&self, partition: i32, partial: &pb::Partial) -> Option<(i32, i64)> {
        let key = if partition < 0 { "deployments".to_string() } else { format!("{}/{partition}", self.config.topic) };
        let bytes = partial.encode_to_vec();
        let record = FutureRecord::to(&self.config.results_topic).key(&key).payload(&bytes);
        match self.producer.send(record, Duration::from_secs(30)).await {
            Ok(delivery) => Some((delivery.partition, delivery.offset)),
            Err((e, _)) => {
                eprintln!("tracelens: kafka: publishing to {}: {e}", self.config.results_topic);
                None
            }
        }
    }

    async fn handle_events(&mut self) -> Result<(), KafkaError> {
        let events = std::mem::take(&mut *self.consumer.context().events.lock().expect("events lock"));
        for event in events {
            match event {
                GroupEvent::Revoked(partitions) => {
                    eprintln!("tracelens: kafka: {} partitions revoked: {partitions:?}", self.config.topic);
                    for p in partitions {
                        self.owned.remove(&p);
                        self.unclaimed.remove(&p);
                        self.status.lag.lock().expect("lag lock").remove(&p);
                    }
                }
                GroupEvent::Assigned(partitions) => {
                    eprintln!("tracelens: kafka: {} partitions assigned: {partitions:?}", self.config.topic);
                    for p in partitions {
                        self.reclaim(p).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Claims `partition`: publishes the claim, waits until the results
    /// reader has read it, and resumes at the committed offset with the
    /// spans already counted skipped.
    async fn reclaim(&mut self, partition: i32) {
        let topic = self.config.topic.clone();
        let mut list = TopicPartitionList::new();
        let _ = list.add_partition(&topic, partition);
        let _ = self.consumer.pause(&list);
        let resume = match self.resume_offset(partition) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("tracelens: kafka: {topic} partition {partition}: reading the committed offset: {e}");
                self.unclaimed.insert(partition);
                return;
            }
        };
        self.claims += 1;
        let claim = format!("{}-{}", self.claim_prefix, self.claims);
        let marker = PartitionWork::claim_partial(&topic, partition as u32, &claim, resume);
        let Some((rp, ro)) = self.send(partition, &marker).await else {
            self.unclaimed.insert(partition);
            return;
        };
        self.read.wait_past(rp, ro).await;
        let skip = {
            let live = self.live.lock().expect("live lock");
            live.ledger().map(|l| l.skip_set(&topic, partition as u32, resume)).unwrap_or_default()
        };
        eprintln!(
            "tracelens: kafka: claimed {topic} partition {partition} at offset {resume} ({} counted trace fragments to skip)",
            skip.len()
        );
        let work = PartitionWork::new(&topic, partition as u32, &claim, resume, skip);
        self.owned.insert(partition, Owned::new(work));
        let _ = self.consumer.seek(&topic, partition, Offset::Offset(resume as i64), Duration::from_secs(5));
        let _ = self.consumer.resume(&list);
    }

    /// The group's committed offset of `partition`, else its first.
    fn resume_offset(&self, partition: i32) -> Result<u64, ClientError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.config.topic, partition);
        let committed = tokio::task::block_in_place(|| self.consumer.committed_offsets(list, Duration::from_secs(10)))?;
        let offset = committed.find_partition(&self.config.topic, partition).map(|e| e.offset());
        match offset {
            Some(Offset::Offset(o)) if o >= 0 => Ok(o as u64),
            _ => {
                let (low, _) = tokio::task::block_in_place(|| {
                    self.consumer.fetch_watermarks(&self.config.topic, partition, Duration::from_secs(10))
                })?;
                Ok(low.max(0) as u64)
            }
        }
    }

    /// Records behind the end of each assigned partition.
    fn measure_lag(&self) {
        let mut lag = BTreeMap::new();
        for (&p, owned) in &self.owned {
            if let Ok((_, high)) = tokio::task::block_in_place(|| {
                self.consumer.fetch_watermarks(&self.config.topic, p, Duration::from_secs(2))
            }) {
                lag.insert(p, (high - owned.work.next_offset() as i64).max(0));
            }
        }
        *self.status.lag.lock().expect("lag lock") = lag;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "tracelens".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::partial::SkipSet;

    #[test]
    fn a_partition_s_clock_stops_while_it_is_paused() {
        let mut owned = Owned::new(PartitionWork::new("spans", 0, "c", 0, SkipSet::default()));
        assert_eq!(owned.clock_ms(1_000), 1_000);
        // Paused at 1 s of reading time for a failed commit, resumed at 4 s.
        owned.paused_since = Some(1_000);
        assert_eq!(owned.clock_ms(3_000), 1_000, "no time passes while paused");
        owned.paused_ms += 4_000 - owned.paused_since.take().unwrap();
        assert_eq!(owned.clock_ms(4_000), 1_000);
        assert_eq!(owned.clock_ms(4_500), 1_500, "and runs again once resumed");
    }
}
