//! The [`Dictionary`]: the interner and resource table that every span of a
//! run refers into, with the well-known attribute keys pre-interned.

use rustc_hash::FxHashMap;

use super::{Attr, Interner, Resource, ResourceId, ResourceTable, Span, Sym, Value};

/// Service name used when a resource has no `service.name`, as the
/// OpenTelemetry SDKs do.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Interned strings and resources for one run.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// Interned strings.
    pub strings: Interner,
    /// Deduplicated resources.
    pub resources: ResourceTable,
    keys: WellKnownKeys,
    /// Resources by the exact bytes that encoded them (a protobuf
    /// `Resource` message), so a resource every request repeats is decoded
    /// once. Bounded: encodings up to [`ENCODED_RESOURCE_MAX_BYTES`] only,
    /// cleared past [`ENCODED_RESOURCES_KEPT`] entries (16 MiB at most).
    encoded_resources: FxHashMap<Box<[u8]>, ResourceId>,
}

/// Encoded resources remembered by a [`Dictionary`] before it starts over.
const ENCODED_RESOURCES_KEPT: usize = 4096;

/// Largest resource encoding a [`Dictionary`] remembers (real resources
/// are a few hundred bytes; a larger one is decoded every time).
const ENCODED_RESOURCE_MAX_BYTES: usize = 4096;

/// Pre-interned attribute keys, compared by symbol instead of by text.
/// Every dictionary interns them first and in the same order, so their
/// symbols are equal in every dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WellKnownKeys {
    /// `service.name`
    pub service_name: Sym,
    /// `service.version`
    pub service_version: Sym,
    /// `deployment.environment.name`
    pub deployment_environment_name: Sym,
    /// `deployment.environment`
    pub deployment_environment: Sym,
    /// `host.name`
    pub host_name: Sym,
    /// `unknown_service` (a value, not a key: the default service name)
    pub unknown_service: Sym,
    /// `peer.service`
    pub peer_service: Sym,
    /// `server.address`
    pub server_address: Sym,
    /// `network.peer.address`
    pub network_peer_address: Sym,
    /// `network.peer.port`
    pub network_peer_port: Sym,
    /// `db.namespace`
    pub db_namespace: Sym,
    /// `db.name`
    pub db_name: Sym,
    /// `db.system`
    pub db_system: Sym,
    /// `db.system.name`
    pub db_system_name: Sym,
    /// `messaging.system`
    pub messaging_system: Sym,
    /// `messaging.destination.name`
    pub messaging_destination_name: Sym,
}

impl Default for Dictionary {
    fn default() -> Self {
        let mut strings = Interner::default();
        let keys = WellKnownKeys {
            service_name: strings.intern("service.name"),
            service_version: strings.intern("service.version"),
            deployment_environment_name: strings.intern("deployment.environment.name"),
            deployment_environment: strings.intern("deployment.environment"),
            host_name: strings.intern("host.name"),
            unknown_service: strings.intern(UNKNOWN_SERVICE),
            peer_service: strings.intern("peer.service"),
            server_address: strings.intern("server.address"),
            network_peer_address: strings.intern("network.peer.address"),
            network_peer_port: strings.intern("network.peer.port"),
            db_namespace: strings.intern("db.namespace"),
            db_name: strings.intern("db.name"),
            db_system: strings.intern("db.system"),
            db_system_name: strings.intern("db.system.name"),
            messaging_system: strings.intern("messaging.system"),
            messaging_destination_name: strings.intern("messaging.destination.name"),
        };
        Dictionary { strings, resources: ResourceTable::default(), keys, encoded_resources: FxHashMap::default() }
    }
}

impl Dictionary {
    /// The pre-interned well-known keys.
    pub fn keys(&self) -> &WellKnownKeys {
        &self.keys
    }

    /// Interns a string.
    pub fn intern(&mut self, text: &str) -> Sym {
        self.strings.intern(text)
    }

    /// The symbol of a string, if it was ever interned.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.strings.get(text)
    }

    /// The text of a symbol.
    pub fn resolve(&self, sym: Sym) -> &str {
        self.strings.resolve(sym)
    }

    /// The resource these exact bytes encoded before, if remembered.
    pub fn encoded_resource(&self, bytes: &[u8]) -> Option<ResourceId> {
        self.encoded_resources.get(bytes).copied()
    }

    /// Remembers that `bytes` encode resource `id`.
    pub fn remember_encoded_resource(&mut self, bytes: &[u8], id: ResourceId) {
        if bytes.len() > ENCODED_RESOURCE_MAX_BYTES {
            return;
        }
        if self.encoded_resources.len() >= ENCODED_RESOURCES_KEPT {
            self.encoded_resources.clear();
        }
        self.encoded_resources.insert(bytes.into(), id);
    }

    /// Builds a resource from its attributes, lifting the well-known ones
    /// into fields, and returns its (deduplicated) id.
    pub fn resource(&mut self, attributes: Vec<Attr>) -> ResourceId {
        let k = self.keys;
        let mut resource = Resource { service: k.unknown_service, ..Resource::default() };
        let mut env_fallback = Sym::EMPTY;
        for attr in &attributes {
            let Value::Str(text) = &attr.value else { continue };
            let slot = if attr.key == k.service_name {
                &mut resource.service
            } else if attr.key == k.service_version {
                &mut resource.version
            } else if attr.key == k.deployment_environment_name {
                &mut resource.environment
            } else if attr.key == k.deployment_environment {
                &mut env_fallback
            } else if attr.key == k.host_name {
                &mut resource.host
            } else {
                continue;
            };
            *slot = self.strings.intern(text);
        }
        if resource.service.is_empty() {
            resource.service = k.unknown_service;
        }
        if resource.environment.is_empty() {
            resource.environment = env_fallback;
        }
        resource.attributes = attributes;
        self.resources.insert(resource)
    }

    /// The resource behind an id.
    pub fn resource_of(&self, id: ResourceId) -> &Resource {
        self.resources.get(id)
    }
}

/// Maps the symbols and resources of one dictionary to those of another
/// ([`Dictionary::absorb`]): spans decoded with a dictionary of their own
/// (on another thread) then refer into the other one.
#[derive(Debug, Default)]
pub struct Translation {
    syms: Vec<Sym>,
    resources: Vec<ResourceId>,
}

impl Translation {
    /// The symbol in the target dictionary.
    pub fn sym(&self, sym: Sym) -> Sym {
        self.syms[sym.index()]
    }

    /// The resource in the target dictionary.
    pub fn resource(&self, id: ResourceId) -> ResourceId {
        self.resources[id.index()]
    }

    /// Rewrites attribute keys, nested ones too.
    pub fn attributes(&self, attrs: &mut [Attr]) {
        for a in attrs {
            a.key = self.sym(a.key);
            self.value(&mut a.value);
        }
    }

    fn value(&self, value: &mut Value) {
        match value {
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Map(attrs) => self.attributes(attrs),
            _ => {}
        }
    }

    /// Rewrites every symbol and resource of `span`.
    pub fn span(&self, span: &mut Span) {
        span.resource = self.resource(span.resource);
        span.service = self.sym(span.service);
        span.name = self.sym(span.name);
        span.scope_name = self.sym(span.scope_name);
        span.scope_version = self.sym(span.scope_version);
        self.attributes(&mut span.attributes);
        if let Some(extra) = span.extra_if_any_mut() {
            for e in &mut extra.events {
                e.name = self.sym(e.name);
                self.attributes(&mut e.attributes);
            }
            for l in &mut extra.links {
                self.attributes(&mut l.attributes);
            }
        }
    }
}

impl Dictionary {
    /// Interns every string and resource of `other` here, in `other`'s
    /// order, and returns how to rewrite what refers into `other`.
    pub fn absorb(&mut self, other: &Dictionary) -> Translation {
        let syms: Vec<Sym> = other.strings.iter().map(|(_, text)| self.intern(text)).collect();
        let mut translation = Translation { syms, resources: Vec::with_capacity(other.resources.len()) };
        for (_, resource) in other.resources.iter() {
            let mut attrs = resource.attributes.clone();
            translation.attributes(&mut attrs);
            translation.resources.push(self.resource(attrs));
        }
        translation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbed_dictionaries_translate_spans_and_resources() {
        let mut other = Dictionary::default();
        let attrs = vec![s(&mut other, "service.name", "cart"), s(&mut other, "k8s.pod.name", "cart-1")];
        let resource = other.resource(attrs);
        let mut span = Span::new(crate::model::TraceId([1; 16]), crate::model::SpanId([1; 8]));
        span.resource = resource;
        span.service = other.resource_of(resource).service;
        span.name = other.intern("GetCart");
        let nested = Attr { key: other.intern("inner"), value: Value::Int(1) };
        span.attributes = vec![Attr { key: other.intern("outer"), value: Value::Map(vec![nested].into()) }];
        let mut here = Dictionary::default();
        here.intern("something first");
        let translation = here.absorb(&other);
        translation.span(&mut span);
        assert_eq!(here.resolve(span.name), "GetCart");
        assert_eq!(here.resolve(span.service), "cart");
        assert_eq!(here.resolve(here.resource_of(span.resource).service), "cart");
        assert_eq!(here.resolve(span.attributes[0].key), "outer");
        let Value::Map(inner) = &span.attributes[0].value else { panic!("a map") };
        assert_eq!(here.resolve(inner[0].key), "inner");
    }

    fn s(d: &mut Dictionary, k: &str, v: &str) -> Attr {
        Attr { key: d.intern(k), value: Value::Str(v.into()) }
    }

    #[test]
    fn remembered_resource_encodings_are_bounded() {
        let mut d = Dictionary::default();
        let id = d.resource(Vec::new());
        d.remember_encoded_resource(&[1; ENCODED_RESOURCE_MAX_BYTES + 1], id);
        assert_eq!(d.encoded_resource(&[1; ENCODED_RESOURCE_MAX_BYTES + 1]), None, "too large to keep");
        for i in 0..ENCODED_RESOURCES_KEPT as u32 {
            d.remember_encoded_resource(&i.to_le_bytes(), id);
        }
        assert_eq!(d.encoded_resource(&0u32.to_le_bytes()), Some(id));
        d.remember_encoded_resource(b"one more", id);
        assert_eq!(d.encoded_resources.len(), 1, "full: started over");
        assert_eq!(d.encoded_resource(b"one more"), Some(id));
    }

    #[test]
    fn lifts_well_known_attributes_and_dedups() {
        let mut d = Dictionary::default();
        let attrs = vec![
            s(&mut d, "service.name", "cart"),
            s(&mut d, "service.version", "1.2.3"),
            s(&mut d, "deployment.environment", "prod"),
            s(&mut d, "host.name", "node-7"),
            s(&mut d, "k8s.pod.name", "cart-abc"),
        ];
        let id = d.resource(attrs.clone());
        let r = d.resource_of(id).clone();
        assert_eq!(d.resolve(r.service), "cart");
        assert_eq!(d.resolve(r.version), "1.2.3");
        assert_eq!(d.resolve(r.environment), "prod");
        assert_eq!(d.resolve(r.host), "node-7");
        assert_eq!(r.attributes.len(), 5);
        assert_eq!(d.resource(attrs), id);
        assert_eq!(d.resources.len(), 1);
    }

    #[test]
    fn well_known_keys_are_the_same_in_every_dictionary() {
        let mut a = Dictionary::default();
        a.intern("something else");
        assert_eq!(a.keys(), Dictionary::default().keys());
    }

    #[test]
    fn missing_service_name_is_unknown_service() {
        let mut d = Dictionary::default();
        let id = d.resource(Vec::new());
        assert_eq!(d.resolve(d.resource_of(id).service), UNKNOWN_SERVICE);
        let attrs = vec![s(&mut d, "service.name", "")];
        let id = d.resource(attrs);
        assert_eq!(d.resolve(d.resource_of(id).service), UNKNOWN_SERVICE);
    }

    #[test]
    fn new_environment_key_wins() {
        let mut d = Dictionary::default();
        let attrs =
            vec![s(&mut d, "deployment.environment.name", "staging"), s(&mut d, "deployment.environment", "old")];
        let id = d.resource(attrs);
        assert_eq!(d.resolve(d.resource_of(id).environment), "staging");
    }
}
