//! String interning: service names, operation names and attribute keys are
//! stored once and referred to by a 4-byte [`Sym`].

use rustc_hash::FxHashMap;

/// An interned string. `Sym::EMPTY` is always the empty string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sym(u32);

impl Sym {
    /// The empty string.
    pub const EMPTY: Sym = Sym(0);

    /// Whether this is the empty string.
    pub fn is_empty(self) -> bool {
        self == Sym::EMPTY
    }

    /// The index of this symbol in its interner.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Owns interned strings; look-ups by text hash once, look-ups by [`Sym`]
/// are an index.
#[derive(Debug, Clone)]
pub struct Interner {
    map: FxHashMap<Box<str>, Sym>,
    strings: Vec<Box<str>>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut interner = Interner { map: FxHashMap::default(), strings: Vec::new() };
        let empty = interner.intern("");
        debug_assert_eq!(empty, Sym::EMPTY);
        interner
    }
}

impl Interner {
    /// Returns the symbol for `text`, adding it if new.
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(&sym) = self.map.get(text) {
            return sym;
        }
        let sym = Sym(u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct strings"));
        self.strings.push(text.into());
        self.map.insert(text.into(), sym);
        sym
    }

    /// Returns the symbol for `text` if it was interned before.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.map.get(text).copied()
    }

    /// The text of a symbol.
    ///
    /// # Panics
    /// If `sym` came from another interner and is out of range.
    pub fn resolve(&self, sym: Sym) -> &str {
        &self.strings[sym.index()]
    }

    /// Every string with its symbol, in the order they were interned.
    pub fn iter(&self) -> impl Iterator<Item = (Sym, &str)> {
        self.strings.iter().enumerate().map(|(i, s)| (Sym(i as u32), &**s))
    }

    /// Number of distinct strings, the empty one included.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Always false: the empty string is interned from the start.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent() {
        let mut i = Interner::default();
        assert_eq!(i.intern(""), Sym::EMPTY);
        let a = i.intern("frontend");
        let b = i.intern("checkout");
        assert_ne!(a, b);
        assert_eq!(i.intern("frontend"), a);
        assert_eq!(i.resolve(b), "checkout");
        assert_eq!(i.get("checkout"), Some(b));
        assert_eq!(i.get("nope"), None);
        assert_eq!(i.len(), 3);
    }
}
