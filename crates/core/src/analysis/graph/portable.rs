//! The service graph to and from its portable message
//! ([`crate::analysis::portable`]).

use super::{
    ConnectionType, EdgeStats, NodeKind, NodeName, ServiceGraph, Side, Unpaired, WaitingConsumer, WaitingProducer,
};
use crate::analysis::portable::{Names, PortableError, Syms, histogram_in, histogram_out, pb, span_id, trace_id};
use crate::model::Dictionary;

const NODE_KINDS: [NodeKind; 4] = [NodeKind::Service, NodeKind::Database, NodeKind::MessagingSystem, NodeKind::Virtual];
const CONNECTIONS: [ConnectionType; 4] =
    [ConnectionType::Direct, ConnectionType::MessagingSystem, ConnectionType::Database, ConnectionType::VirtualNode];

fn side_out(dict: &Dictionary, names: &mut Names, side: &Side) -> Option<pb::Side> {
    Some(pb::Side { service: names.sym(dict, side.service), duration: side.duration, error: side.error })
}

fn side_in(side: Option<&pb::Side>, syms: &Syms<'_>, field: &str) -> Result<Side, PortableError> {
    let side = side.ok_or_else(|| PortableError::invalid(field, "missing"))?;
    Ok(Side {
        service: syms.sym(side.service, || format!("{field}.service"))?,
        duration: side.duration,
        error: side.error,
    })
}

fn peer_in(peer: Option<u32>, syms: &Syms<'_>, field: &str) -> Result<Option<Box<str>>, PortableError> {
    peer.map(|p| syms.text(p, || format!("{field}.peer")).map(Box::from)).transpose()
}

impl ServiceGraph {
    /// The graph as a portable message, names added to `names`.
    pub fn to_portable(&self, dict: &Dictionary, names: &mut Names) -> pb::Graph {
        let nodes = self
            .graph
            .node_weights()
            .map(|n| pb::Node {
                name: match &n.name {
                    NodeName::Service(s) => names.sym(dict, *s),
                    NodeName::Other(o) => names.text(o),
                },
                kind: n.kind as u32,
            })
            .collect();
        let mut edges: Vec<pb::Edge> = self
            .edges
            .iter()
            .map(|(&(a, b, connection), &ix)| {
                let stats = &self.graph[ix];
                pb::Edge {
                    client: a.index() as u32,
                    server: b.index() as u32,
                    connection: connection as u32,
                    calls: stats.calls,
                    failed: stats.failed,
                    inferred: stats.inferred,
                    server_latency: histogram_out(&stats.server_latency),
                    client_latency: histogram_out(&stats.client_latency),
                }
            })
            .collect();
        edges.sort_by_key(|e| (e.client, e.server, e.connection));
        let u = self.unpaired;
        let mut producers: Vec<pb::Producer> = self
            .producers
            .iter()
            .map(|((trace, span), p)| pb::Producer {
                trace_id: trace.0.to_vec(),
                span_id: span.0.to_vec(),
                side: side_out(dict, names, &p.side),
                peer: p.peer.as_deref().map(|peer| names.text(peer)),
                answered: p.answered,
            })
            .collect();
        producers.sort_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
        let consumers = self
            .consumers
            .iter()
            .map(|c| pb::Consumer {
                links: c.links.iter().map(|(t, s)| [&t.0[..], &s.0[..]].concat()).collect(),
                side: side_out(dict, names, &c.side),
                peer: c.peer.as_deref().map(|peer| names.text(peer)),
            })
            .collect();
        pb::Graph {
            nodes,
            edges,
            unpaired: Some(pb::Unpaired {
                client: u.client,
                producer: u.producer,
                orphan_server: u.orphan_server,
                orphan_consumer: u.orphan_consumer,
                extra_server: u.extra_server,
            }),
            producers,
            consumers,
        }
    }

    /// Adds the graph of a portable message.
    pub fn read_portable(
        &mut self,
        message: &pb::Graph,
        syms: &Syms<'_>,
        dict: &Dictionary,
    ) -> Result<(), PortableError> {
        let mut other = ServiceGraph::new(dict);
        let mut nodes = Vec::with_capacity(message.nodes.len());
        for (i, n) in message.nodes.iter().enumerate() {
            let field = || format!("graph.nodes[{i}]");
            let kind = *NODE_KINDS.get(n.kind as usize).ok_or_else(|| {
                PortableError::invalid(format!("{}.kind", field()), format!("no node kind {}", n.kind))
            })?;
            let name = match kind {
                NodeKind::Service => NodeName::Service(syms.sym(n.name, || format!("{}.name", field()))?),
                _ => NodeName::Other(syms.text(n.name, || format!("{}.name", field()))?.into()),
            };
            nodes.push(other.node(&name, kind));
        }
        for (i, e) in message.edges.iter().enumerate() {
            let field = |f: &str| format!("graph.edges[{i}].{f}");
            let node = |n: u32, f: &str| {
                nodes.get(n as usize).copied().ok_or_else(|| {
                    PortableError::invalid(field(f), format!("node {n} is not among the {}", nodes.len()))
                })
            };
            let (a, b) = (node(e.client, "client")?, node(e.server, "server")?);
            let connection = *CONNECTIONS.get(e.connection as usize).ok_or_else(|| {
                PortableError::invalid(field("connection"), format!("no connection type {}", e.connection))
            })?;
            if other.edges.contains_key(&(a, b, connection)) {
                return Err(PortableError::invalid(field("client"), "the edge is listed twice"));
            }
            let stats = EdgeStats {
                calls: e.calls,
                failed: e.failed,
                inferred: e.inferred,
                server_latency: histogram_in(e.server_latency.as_ref(), || field("server_latency"))?,
                client_latency: histogram_in(e.client_latency.as_ref(), || field("client_latency"))?,
            };
            let ix = other.graph.add_edge(a, b, stats);
            other.edges.insert((a, b, connection), ix);
        }
        if let Some(u) = message.unpaired {
            other.unpaired = Unpaired {
                client: u.client,
                producer: u.producer,
                orphan_server: u.orphan_server,
                orphan_consumer: u.orphan_consumer,
                extra_server: u.extra_server,
            };
        }
        for (i, p) in message.producers.iter().enumerate() {
            let field = format!("graph.producers[{i}]");
            let key = (
                trace_id(&p.trace_id, || format!("{field}.trace_id"))?,
                span_id(&p.span_id, || format!("{field}.span_id"))?,
            );
            let side = side_in(p.side.as_ref(), syms, &format!("{field}.side"))?;
            let waiting = WaitingProducer { side, peer: peer_in(p.peer, syms, &field)?, answered: p.answered };
            other.producers.insert(key, waiting);
        }
        for (i, c) in message.consumers.iter().enumerate() {
            let field = format!("graph.consumers[{i}]");
            let links = c
                .links
                .iter()
                .map(|l| {
                    let at = || format!("{field}.links");
                    if l.len() != 24 {
                        return Err(PortableError::invalid(at(), format!("a link is 24 bytes, not {}", l.len())));
                    }
                    Ok((trace_id(&l[..16], at)?, span_id(&l[16..], at)?))
                })
                .collect::<Result<_, _>>()?;
            let side = side_in(c.side.as_ref(), syms, &format!("{field}.side"))?;
            other.consumers.push(WaitingConsumer { links, side, peer: peer_in(c.peer, syms, &field)? });
        }
        self.merge(&other);
        Ok(())
    }
}
