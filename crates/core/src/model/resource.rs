//! Resources (the emitting process: service, version, environment, host),
//! deduplicated so that each span refers to one by a 4-byte id.

use rustc_hash::FxHashMap;

use super::{Attr, Sym};

/// Index of a resource in a [`ResourceTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ResourceId(u32);

impl ResourceId {
    /// The index in the table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An emitting process. The well-known attributes are lifted into fields so
/// analyses never search the attribute list for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Resource {
    /// `service.name`; `unknown_service` when a dump gives none.
    pub service: Sym,
    /// `service.version`, or empty.
    pub version: Sym,
    /// `deployment.environment.name` (or the older `deployment.environment`), or empty.
    pub environment: Sym,
    /// `host.name`, or empty.
    pub host: Sym,
    /// Every resource attribute as given, the well-known ones included.
    pub attributes: Vec<Attr>,
}

/// Deduplicating store of resources.
#[derive(Debug, Clone, Default)]
pub struct ResourceTable {
    ids: FxHashMap<Resource, ResourceId>,
    resources: Vec<Resource>,
}

impl ResourceTable {
    /// Returns the id of an equal resource, adding `resource` if it is new.
    pub fn insert(&mut self, resource: Resource) -> ResourceId {
        if let Some(&id) = self.ids.get(&resource) {
            return id;
        }
        let id = ResourceId(u32::try_from(self.resources.len()).expect("fewer than 2^32 resources"));
        self.resources.push(resource.clone());
        self.ids.insert(resource, id);
        id
    }

    /// The resource behind an id.
    ///
    /// # Panics
    /// If `id` came from another table.
    pub fn get(&self, id: ResourceId) -> &Resource {
        &self.resources[id.index()]
    }

    /// Number of distinct resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Whether no resource was added.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// All resources in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceId, &Resource)> {
        self.resources.iter().enumerate().map(|(i, r)| (ResourceId(i as u32), r))
    }
}
