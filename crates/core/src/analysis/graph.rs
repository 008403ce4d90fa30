//! The service dependency graph: who calls whom, how often, how slow, how
//! often it fails — derived the way Tempo's metrics-generator and the
//! Collector's servicegraph connector do, but paired exactly over whole
//! traces instead of within a time-to-live.
//!
//! Per trace, in order:
//! 1. A SERVER/CONSUMER span whose parent is a CLIENT/PRODUCER gives an edge
//!    parent service → child service (`messaging_system` when either side is
//!    messaging). One edge per client span; further server children are
//!    counted as anomalies.
//! 2. An unpaired CLIENT with a database attribute gives a `database` edge to
//!    a node named from `peer.service`, `server.address`,
//!    `network.peer.address[:port]` or the database attribute.
//! 3. Spans without usable kinds fall back to the service-change rule: a
//!    child in another service than its parent gives an `inferred` edge
//!    (never a self-edge); a kind-less leaf with `peer.service` or
//!    `server.address` calls a virtual node.
//! 4. Leftovers: a root SERVER/CONSUMER is called by a virtual client (its
//!    peer attribute, else `user`); an unpaired CLIENT/PRODUCER with a peer
//!    attribute calls a virtual server; the rest are counted as unpaired. A
//!    non-root server half whose parent is missing is an orphan.
//!
//! A root CONSUMER that links to a PRODUCER in another trace is paired with
//! it when both are in the input; producers wait for such consumers until
//! [`ServiceGraph::finish`].

use std::borrow::Cow;

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::histogram::{LatencyHistogram, LatencySummary};
use crate::model::{Attr, Dictionary, Span, SpanId, SpanKind, Sym, Trace, TraceId, Value, WellKnownKeys};

mod portable;

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// An instrumented service.
    Service,
    /// A database, seen from its clients.
    Database,
    /// A message broker, seen from its producers or consumers.
    MessagingSystem,
    /// An uninstrumented peer or an external caller (`user`).
    Virtual,
}

impl NodeKind {
    /// The name reports use (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Service => "service",
            NodeKind::Database => "database",
            NodeKind::MessagingSystem => "messaging_system",
            NodeKind::Virtual => "virtual",
        }
    }
}

/// A node's name: a service (interned) or a name taken from attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeName {
    /// A service, by its interned name.
    Service(Sym),
    /// A database, broker or virtual node.
    Other(Box<str>),
}

/// A graph node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Name.
    pub name: NodeName,
    /// Kind.
    pub kind: NodeKind,
}

/// How an edge was established (Tempo's `connection_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionType {
    /// A client/server pair (or an inferred call): `""`.
    Direct,
    /// Producer/consumer.
    MessagingSystem,
    /// Client span to a database.
    Database,
    /// One side is a virtual node.
    VirtualNode,
}

impl ConnectionType {
    /// The label Tempo and the Collector use.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Direct => "",
            ConnectionType::MessagingSystem => "messaging_system",
            ConnectionType::Database => "database",
            ConnectionType::VirtualNode => "virtual_node",
        }
    }
}

/// Figures of one edge.
#[derive(Clone, Debug, Default)]
pub struct EdgeStats {
    /// Calls (edges completed).
    pub calls: u64,
    /// Calls where either side had status ERROR.
    pub failed: u64,
    /// Calls found by the service-change fallback rather than span kinds.
    pub inferred: u64,
    /// Server-side durations.
    pub server_latency: LatencyHistogram,
    /// Client-side durations (absent for virtual callers and some inferred calls).
    pub client_latency: LatencyHistogram,
}

impl EdgeStats {
    /// Adds `o`'s figures.
    pub fn merge(&mut self, o: &EdgeStats) {
        self.calls += o.calls;
        self.failed += o.failed;
        self.inferred += o.inferred;
        self.server_latency.merge(&o.server_latency);
        self.client_latency.merge(&o.client_latency);
    }
}

/// Spans that took part in no edge, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Unpaired {
    /// CLIENT spans with no server half, database attribute or peer attribute.
    pub client: u64,
    /// PRODUCER spans with no consumer and no peer attribute.
    pub producer: u64,
    /// Non-root SERVER spans whose parent is not in the input.
    pub orphan_server: u64,
    /// Non-root CONSUMER spans whose parent is not in the input.
    pub orphan_consumer: u64,
    /// SERVER/CONSUMER children beyond the first of one CLIENT/PRODUCER span.
    pub extra_server: u64,
}

impl Unpaired {
    fn merge(&mut self, o: &Unpaired) {
        self.client += o.client;
        self.producer += o.producer;
        self.orphan_server += o.orphan_server;
        self.orphan_consumer += o.orphan_consumer;
        self.extra_server += o.extra_server;
    }
}

/// One side of a call, as far as edges care.
#[derive(Clone, Debug)]
struct Side {
    service: Sym,
    duration: Option<u64>,
    error: bool,
}

impl Side {
    fn of(span: &Span) -> Side {
        Side { service: span.service, duration: span.duration_ns(), error: span.is_error() }
    }
}

/// A producer no consumer in its own trace answered.
#[derive(Clone, Debug)]
struct WaitingProducer {
    side: Side,
    peer: Option<Box<str>>,
    answered: bool,
}

/// A root consumer linking to a producer not seen yet.
#[derive(Clone, Debug)]
struct WaitingConsumer {
    links: Vec<(TraceId, SpanId)>,
    side: Side,
    peer: Option<Box<str>>,
}

/// The dependency graph over any number of traces. Merging two is exact.
#[derive(Clone, Debug)]
pub struct ServiceGraph {
    keys: WellKnownKeys,
    graph: DiGraph<Node, EdgeStats>,
    /// Service nodes by name symbol.
    services: FxHashMap<Sym, NodeIndex>,
    /// Other nodes by kind (index) and name, looked up without a copy.
    others: [FxHashMap<Box<str>, NodeIndex>; 4],
    edges: FxHashMap<(NodeIndex, NodeIndex, ConnectionType), EdgeIndex>,
    unpaired: Unpaired,
    producers: FxHashMap<(TraceId, SpanId), WaitingProducer>,
    consumers: Vec<WaitingConsumer>,
}

/// The name virtual callers get when nothing names them.
pub const USER_NODE: &str = "user";

/// What the steps of [`ServiceGraph::add_trace`] mark per span.
struct Marks {
    /// A client or producer got a partner.
    answered: Vec<bool>,
    /// A server or consumer was paired by kind (or is a root).
    paired: Vec<bool>,
    /// The span has children.
    has_child: Vec<bool>,
}

impl ServiceGraph {
    /// An empty graph reading attribute keys from `dict`.
    pub fn new(dict: &Dictionary) -> ServiceGraph {
        ServiceGraph {
            keys: *dict.keys(),
            graph: DiGraph::new(),
            services: FxHashMap::default(),
            others: Default::default(),
            edges: FxHashMap::default(),
            unpaired: Unpaired::default(),
            producers: FxHashMap::default(),
            consumers: Vec::new(),
        }
    }

    /// The node of `name` (a service name is only ever a service node's).
    fn node(&mut self, name: &NodeName, kind: NodeKind) -> NodeIndex {
        match name {
            NodeName::Service(s) => self.service(*s),
            NodeName::Other(o) => self.other(o, kind),
        }
    }

    fn service(&mut self, service: Sym) -> NodeIndex {
        if let Some(&index) = self.services.get(&service) {
            return index;
        }
        let index = self.graph.add_node(Node { name: NodeName::Service(service), kind: NodeKind::Service });
        self.services.insert(service, index);
        index
    }

    /// A database, broker or virtual node by name.
    fn other(&mut self, name: &str, kind: NodeKind) -> NodeIndex {
        if let Some(&index) = self.others[kind as usize].get(name) {
            return index;
        }
        let index = self.graph.add_node(Node { name: NodeName::Other(name.into()), kind });
        self.others[kind as usize].insert(name.into(), index);
        index
    }

    fn edge(
        &mut self,
        client: NodeIndex,
        server: NodeIndex,
        connection: ConnectionType,
        client_side: Option<&Side>,
        server_side: &Side,
        inferred: bool,
    ) {
        let key = (client, server, connection);
        let index = match self.edges.get(&key) {
            Some(&e) => e,
            None => {
                let e = self.graph.add_edge(client, server, EdgeStats::default());
                self.edges.insert(key, e);
                e
            }
        };
        let stats = &mut self.graph[index];
        stats.calls += 1;
        stats.inferred += u64::from(inferred);
        if server_side.error || client_side.is_some_and(|c| c.error) {
            stats.failed += 1;
        }
        if let Some(d) = server_side.duration {
            stats.server_latency.record(d);
        }
        if let Some(d) = client_side.and_then(|c| c.duration) {
            stats.client_latency.record(d);
        }
    }

    fn text(attrs: &[Attr], key: Sym) -> Option<Cow<'_, str>> {
        let value = &attrs.iter().find(|a| a.key == key)?.value;
        match value {
            Value::Str(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            _ => None,
        }
    }

    /// The peer a client-ish span names (Tempo's peer attributes, plus
    /// `server.address`).
    fn peer<'s>(&self, span: &'s Span) -> Option<Cow<'s, str>> {
        let k = &self.keys;
        let keys = [k.peer_service, k.server_address, k.db_name, k.db_namespace, k.db_system, k.db_system_name];
        keys.iter().find_map(|&key| Self::text(&span.attributes, key))
    }

    fn messaging_peer<'s>(&self, span: &'s Span) -> Option<Cow<'s, str>> {
        let k = &self.keys;
        [k.peer_service, k.messaging_system, k.server_address].iter().find_map(|&key| Self::text(&span.attributes, key))
    }

    /// Server node of a database call, if the span is one (a database
    /// attribute on the span).
    fn database<'s>(&self, span: &'s Span) -> Option<Cow<'s, str>> {
        let k = &self.keys;
        let db_keys = [k.db_namespace, k.db_name, k.db_system, k.db_system_name];
        let db_value = db_keys.iter().find_map(|&key| Self::text(&span.attributes, key))?;
        let address = || {
            Self::text(&span.attributes, k.network_peer_address).map(|a| {
                match Self::text(&span.attributes, k.network_peer_port) {
                    Some(port) => Cow::Owned(format!("{a}:{port}")),
                    None => a,
                }
            })
        };
        Some(
            Self::text(&span.attributes, k.peer_service)
                .or_else(|| Self::text(&span.attributes, k.server_address))
                .or_else(address)
                .unwrap_or(db_value),
        )
    }

    /// Adds the edges of one assembled trace: kind pairs, roots and
    /// orphans first, then database calls, then changes of service without
    /// a kind pair, then the clients and producers nobody answered.
    pub fn add_trace(&mut self, trace: &Trace) {
        let n = trace.spans.len();
        let mut m = Marks { answered: vec![false; n], paired: vec![false; n], has_child: vec![false; n] };
        for i in 0..n {
            if let Some(p) = trace.parent(i) {
                m.has_child[p] = true;
            }
        }
        self.pair_kinds(trace, &mut m);
        self.database_calls(trace, &mut m);
        self.service_changes(trace, &mut m);
        self.unanswered(trace, &m);
    }

    /// Step 1: server and consumer spans under a client or producer; roots
    /// (called from outside, or consuming a linked message); orphans.
    fn pair_kinds(&mut self, trace: &Trace, m: &mut Marks) {
        let spans = &trace.spans;
        let n = spans.len();
        for i in 0..n {
            let s = &spans[i];
            if !matches!(s.kind, SpanKind::Server | SpanKind::Consumer) {
                continue;
            }
            match trace.parent(i) {
                Some(p) if matches!(spans[p].kind, SpanKind::Client | SpanKind::Producer) => {
                    m.paired[i] = true;
                    if m.answered[p] {
                        self.unpaired.extra_server += 1;
                        continue;
                    }
                    m.answered[p] = true;
                    let connection = if spans[p].kind == SpanKind::Producer || s.kind == SpanKind::Consumer {
                        ConnectionType::MessagingSystem
                    } else {
                        ConnectionType::Direct
                    };
                    let (c, sv) = (self.service(spans[p].service), self.service(s.service));
                    self.edge(c, sv, connection, Some(&Side::of(&spans[p])), &Side::of(s), false);
                }
                Some(_) => {}
                None if s.parent_id.is_none() => {
                    m.paired[i] = true;
                    let peer = if s.kind == SpanKind::Consumer { self.messaging_peer(s) } else { self.peer(s) };
                    let links: Vec<(TraceId, SpanId)> = if s.kind == SpanKind::Consumer {
                        s.links().iter().map(|l| (l.trace_id, l.span_id)).collect()
                    } else {
                        Vec::new()
                    };
                    let side = Side::of(s);
                    if !links.is_empty() {
                        if !self.answer_from_producer(&links, &side) {
                            self.consumers.push(WaitingConsumer { links, side, peer: peer.map(Into::into) });
                        }
                        continue;
                    }
                    self.virtual_caller(s.kind, peer.as_deref(), &side);
                }
                None if s.kind == SpanKind::Server => self.unpaired.orphan_server += 1,
                None => self.unpaired.orphan_consumer += 1,
            }
        }
    }

    /// Step 2: client spans that name a database.
    fn database_calls(&mut self, trace: &Trace, m: &mut Marks) {
        for (i, s) in trace.spans.iter().enumerate() {
            if s.kind == SpanKind::Client
                && !m.answered[i]
                && let Some(db) = self.database(s)
            {
                m.answered[i] = true;
                let side = Side::of(s);
                let (c, d) = (self.service(s.service), self.other(&db, NodeKind::Database));
                self.edge(c, d, ConnectionType::Database, Some(&side), &side, false);
            }
        }
    }

    /// Step 3: a child in another service without a kind pair is a call; a
    /// leaf of unspecified kind naming a peer calls a virtual node.
    fn service_changes(&mut self, trace: &Trace, m: &mut Marks) {
        let spans = &trace.spans;
        let n = spans.len();
        for i in 0..n {
            let Some(p) = trace.parent(i) else { continue };
            let (parent, child) = (&spans[p], &spans[i]);
            if m.paired[i] || parent.service == child.service {
                continue;
            }
            let client_side = matches!(parent.kind, SpanKind::Client | SpanKind::Producer).then(|| Side::of(parent));
            if client_side.is_some() {
                m.answered[p] = true;
            }
            let (c, sv) = (self.service(parent.service), self.service(child.service));
            self.edge(c, sv, ConnectionType::Direct, client_side.as_ref(), &Side::of(child), true);
        }
        for (i, s) in spans.iter().enumerate() {
            if s.kind == SpanKind::Unspecified
                && !m.has_child[i]
                && let Some(peer) = [self.keys.peer_service, self.keys.server_address]
                    .iter()
                    .find_map(|&k| Self::text(&s.attributes, k))
            {
                let side = Side::of(s);
                let (c, v) = (self.service(s.service), self.other(&peer, NodeKind::Virtual));
                self.edge(c, v, ConnectionType::VirtualNode, Some(&side), &side, true);
            }
        }
    }

    /// Step 4: unanswered clients call their peer (a virtual node); unanswered
    /// producers wait for a consumer in a later trace.
    fn unanswered(&mut self, trace: &Trace, m: &Marks) {
        for (i, s) in trace.spans.iter().enumerate() {
            if m.answered[i] {
                continue;
            }
            match s.kind {
                SpanKind::Client => match self.peer(s) {
                    Some(peer) => {
                        let side = Side::of(s);
                        let (c, v) = (self.service(s.service), self.other(&peer, NodeKind::Virtual));
                        self.edge(c, v, ConnectionType::VirtualNode, Some(&side), &side, false);
                    }
                    None => self.unpaired.client += 1,
                },
                SpanKind::Producer => {
                    let peer = self.messaging_peer(s).map(Into::into);
                    self.producers.insert(
                        (trace.trace_id, s.span_id),
                        WaitingProducer { side: Side::of(s), peer, answered: false },
                    );
                }
                _ => {}
            }
        }
    }

    /// Pairs a linking consumer with a producer already seen.
    fn answer_from_producer(&mut self, links: &[(TraceId, SpanId)], consumer: &Side) -> bool {
        for link in links {
            if let Some(producer) = self.producers.get_mut(link) {
                producer.answered = true;
                let producer_side = producer.side.clone();
                let (c, s) = (self.service(producer_side.service), self.service(consumer.service));
                self.edge(c, s, ConnectionType::MessagingSystem, Some(&producer_side), consumer, false);
                return true;
            }
        }
        false
    }

    fn virtual_caller(&mut self, kind: SpanKind, peer: Option<&str>, side: &Side) {
        let node_kind =
            if kind == SpanKind::Consumer && peer.is_some() { NodeKind::MessagingSystem } else { NodeKind::Virtual };
        let (v, s) = (self.other(peer.unwrap_or(USER_NODE), node_kind), self.service(side.service));
        self.edge(v, s, ConnectionType::VirtualNode, None, side, false);
    }

    /// Pairs consumers with producers from other traces, then gives every
    /// remaining producer and consumer its virtual node. Call once all
    /// traces are in; adding traces afterwards starts a new round.
    pub fn finish(&mut self) {
        for consumer in std::mem::take(&mut self.consumers) {
            if !self.answer_from_producer(&consumer.links, &consumer.side) {
                self.virtual_caller(SpanKind::Consumer, consumer.peer.as_deref(), &consumer.side);
            }
        }
        let mut waiting: Vec<WaitingProducer> =
            std::mem::take(&mut self.producers).into_values().filter(|p| !p.answered).collect();
        waiting.sort_by(|a, b| (a.side.service, &a.peer).cmp(&(b.side.service, &b.peer)));
        for p in waiting {
            match p.peer {
                Some(peer) => {
                    let (c, v) = (self.service(p.side.service), self.other(&peer, NodeKind::MessagingSystem));
                    self.edge(c, v, ConnectionType::VirtualNode, Some(&p.side), &p.side, false);
                }
                None => self.unpaired.producer += 1,
            }
        }
    }

    /// Adds everything in `other` (built with the same dictionary).
    pub fn merge(&mut self, other: &ServiceGraph) {
        for (&(a, b, connection), &e) in &other.edges {
            let (na, nb) = (&other.graph[a], &other.graph[b]);
            let a = self.node(&na.name, na.kind);
            let b = self.node(&nb.name, nb.kind);
            let key = (a, b, connection);
            let index = match self.edges.get(&key) {
                Some(&ix) => ix,
                None => {
                    let ix = self.graph.add_edge(a, b, EdgeStats::default());
                    self.edges.insert(key, ix);
                    ix
                }
            };
            self.graph[index].merge(&other.graph[e]);
        }
        for node in other.graph.node_weights() {
            self.node(&node.name, node.kind);
        }
        self.unpaired.merge(&other.unpaired);
        for (k, p) in &other.producers {
            self.producers.entry(*k).or_insert_with(|| p.clone());
        }
        self.consumers.extend(other.consumers.iter().cloned());
    }

    /// Shrinks a graph that is not going to grow for a while (a closed
    /// time bucket): latency histograms to their compact form.
    pub fn compact(&mut self) {
        for e in self.graph.edge_weights_mut() {
            e.server_latency.compact();
            e.client_latency.compact();
        }
        self.consumers.shrink_to_fit();
        self.producers.shrink_to_fit();
    }

    /// Spans that took part in no edge.
    pub fn unpaired(&self) -> Unpaired {
        self.unpaired
    }

    /// The underlying petgraph graph.
    pub fn graph(&self) -> &DiGraph<Node, EdgeStats> {
        &self.graph
    }

    /// Every edge with its raw statistics and resolved names:
    /// (client, server, connection type, stats).
    pub fn edges(&self, dict: &Dictionary) -> Vec<(String, String, ConnectionType, &EdgeStats)> {
        let name = |n: &Node| match &n.name {
            NodeName::Service(s) => dict.resolve(*s).to_string(),
            NodeName::Other(o) => o.to_string(),
        };
        let mut out: Vec<_> = self
            .edges
            .iter()
            .map(|(&(a, b, c), &ix)| (name(&self.graph[a]), name(&self.graph[b]), c, &self.graph[ix]))
            .collect();
        out.sort_by(|x, y| (&x.0, &x.1, x.2).cmp(&(&y.0, &y.1, y.2)));
        out
    }

    /// A sorted, name-resolved view for reports.
    pub fn view(&self, dict: &Dictionary) -> GraphView {
        let name = |n: &Node| match &n.name {
            NodeName::Service(s) => dict.resolve(*s).to_string(),
            NodeName::Other(o) => o.to_string(),
        };
        let mut order: Vec<(String, NodeKind, NodeIndex)> =
            self.graph.node_indices().map(|ix| (name(&self.graph[ix]), self.graph[ix].kind, ix)).collect();
        order.sort();
        let mut position = vec![0usize; order.len()];
        for (pos, (_, _, ix)) in order.iter().enumerate() {
            position[ix.index()] = pos;
        }
        let nodes: Vec<NodeView> = order.into_iter().map(|(name, kind, _)| NodeView { name, kind }).collect();
        let mut edges: Vec<EdgeView> = self
            .edges
            .iter()
            .map(|(&(a, b, connection), &ix)| {
                let stats = &self.graph[ix];
                EdgeView {
                    client: name(&self.graph[a]),
                    server: name(&self.graph[b]),
                    client_node: position[a.index()],
                    server_node: position[b.index()],
                    connection_type: connection.as_str(),
                    calls: stats.calls,
                    failed: stats.failed,
                    inferred: stats.inferred,
                    server_latency: stats.server_latency.summary(),
                    client_latency: (stats.client_latency.count() > 0).then(|| stats.client_latency.summary()),
                    without_duration: stats.calls.saturating_sub(stats.server_latency.count()),
                }
            })
            .collect();
        edges.sort_by(|a, b| (&a.client, &a.server, a.connection_type).cmp(&(&b.client, &b.server, b.connection_type)));
        GraphView { nodes, edges, unpaired: self.unpaired }
    }
}

/// A node in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// `service`, `database`, `messaging_system` or `virtual`.
    #[serde(rename = "type")]
    pub kind: NodeKind,
}

/// An edge in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EdgeView {
    /// Calling node.
    pub client: String,
    /// Called node.
    pub server: String,
    /// Index of the client in [`GraphView::nodes`].
    #[serde(skip)]
    pub client_node: usize,
    /// Index of the server in [`GraphView::nodes`].
    #[serde(skip)]
    pub server_node: usize,
    /// `""`, `database`, `messaging_system` or `virtual_node`.
    pub connection_type: &'static str,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Calls found by the service-change fallback.
    pub inferred: u64,
    /// Server-side latency.
    pub server_latency: LatencySummary,
    /// Client-side latency, when clients were seen.
    pub client_latency: Option<LatencySummary>,
    /// Calls whose server side has no duration (or unusable timing):
    /// counted in `calls`, left out of `server_latency`.
    pub without_duration: u64,
}

/// The graph as reports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GraphView {
    /// Nodes, sorted by name.
    pub nodes: Vec<NodeView>,
    /// Edges, sorted by client, server, connection type.
    pub edges: Vec<EdgeView>,
    /// Spans in no edge.
    pub unpaired: Unpaired,
}

impl GraphView {
    /// Keeps only the edges into or out of `service`, and their nodes.
    pub fn only_service(&mut self, service: &str) {
        self.edges.retain(|e| e.client == service || e.server == service);
        let mut keep: Vec<usize> = self.edges.iter().flat_map(|e| [e.client_node, e.server_node]).collect();
        keep.sort_unstable();
        keep.dedup();
        let mut position = vec![usize::MAX; self.nodes.len()];
        for (new, &old) in keep.iter().enumerate() {
            position[old] = new;
        }
        self.nodes = keep.iter().map(|&i| self.nodes[i].clone()).collect();
        for e in &mut self.edges {
            e.client_node = position[e.client_node];
            e.server_node = position[e.server_node];
        }
    }

    /// The edge from `client` to `server`, if exactly one connection type links them.
    pub fn edge(&self, client: &str, server: &str) -> Option<&EdgeView> {
        let mut found = self.edges.iter().filter(|e| e.client == client && e.server == server);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}
