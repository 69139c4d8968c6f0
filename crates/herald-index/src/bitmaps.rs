//! A map from names (tags, values, platforms, packages) to the bitmap of accounts having them.

use std::collections::HashMap;
use std::mem::size_of;

use roaring::RoaringBitmap;

/// Names to account bitmaps. An empty bitmap is never kept, so the number of entries is the
/// number of names in use and two maps with the same members compare equal.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bitmaps(HashMap<Box<str>, RoaringBitmap>);

impl Bitmaps {
    pub(crate) fn get(&self, name: &str) -> Option<&RoaringBitmap> {
        self.0.get(name)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.0.iter().map(|(name, bitmap)| (&**name, bitmap))
    }

    /// Changes the bitmap of `name` (an empty one if absent) and keeps it only if non-empty.
    pub(crate) fn update(&mut self, name: &str, change: impl FnOnce(&mut RoaringBitmap)) {
        match self.0.get_mut(name) {
            Some(bitmap) => {
                change(bitmap);
                if bitmap.is_empty() {
                    self.0.remove(name);
                }
            }
            // The key is allocated only for a new name, which is rare once an index is warm.
            None => {
                let mut bitmap = RoaringBitmap::new();
                change(&mut bitmap);
                if !bitmap.is_empty() {
                    self.0.insert(name.into(), bitmap);
                }
            }
        }
    }

    pub(crate) fn insert(&mut self, name: &str, id: u32) {
        self.update(name, |bitmap| {
            bitmap.insert(id);
        });
    }

    pub(crate) fn remove(&mut self, name: &str, id: u32) {
        if let Some(bitmap) = self.0.get_mut(name) {
            if bitmap.remove(id) && bitmap.is_empty() {
                self.0.remove(name);
            }
        }
    }

    /// Removes `id` from every bitmap; costs one lookup per name.
    pub(crate) fn remove_everywhere(&mut self, id: u32) {
        self.0.retain(|_, bitmap| {
            bitmap.remove(id);
            !bitmap.is_empty()
        });
    }

    /// Removes every id of `ids` from every bitmap.
    pub(crate) fn remove_all(&mut self, ids: &RoaringBitmap) {
        self.0.retain(|_, bitmap| {
            *bitmap -= ids;
            !bitmap.is_empty()
        });
    }

    /// Adds every member of `other`'s bitmaps to the bitmaps of the same names.
    pub(crate) fn merge(&mut self, other: Bitmaps) {
        for (name, bitmap) in other.0 {
            match self.0.get_mut(&name) {
                Some(mine) => *mine |= bitmap,
                None => {
                    self.0.insert(name, bitmap);
                }
            }
        }
    }

    /// The same names with every member `id` replaced by `map(id)`, or dropped for `None`;
    /// names left without members are dropped.
    pub(crate) fn remap(&self, map: &impl Fn(u32) -> Option<u32>) -> Self {
        Self::from_entries(self.0.iter().map(|(name, bitmap)| (name.clone(), remap(bitmap, map))))
    }

    /// The map of the non-empty bitmaps among `entries`.
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (Box<str>, RoaringBitmap)>,
    ) -> Self {
        Self(entries.into_iter().filter(|(_, bitmap)| !bitmap.is_empty()).collect())
    }

    /// Bytes held: the bitmaps (see [`bitmap_bytes`]), names, and the hash table's slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        let slots = self.0.capacity() * (size_of::<(Box<str>, RoaringBitmap)>() + 1);
        let contents: usize =
            self.0.iter().map(|(name, bitmap)| name.len() + bitmap_bytes(bitmap)).sum();
        slots + contents
    }
}

/// The heap bytes of a bitmap, estimated as its serialized size (the values, plus a few bytes per
/// container) plus the in-memory container record that the serialized form does not have.
pub(crate) fn bitmap_bytes(bitmap: &RoaringBitmap) -> usize {
    const CONTAINER_RECORD: usize = 32;
    let containers = usize::try_from(bitmap.statistics().n_containers).unwrap_or(usize::MAX);
    bitmap.serialized_size() + containers.saturating_mul(CONTAINER_RECORD)
}

/// `bitmap` with every member `id` replaced by `map(id)`, or dropped for `None`. An increasing
/// `map` builds the result by appending, several times faster than inserting.
pub(crate) fn remap(bitmap: &RoaringBitmap, map: &impl Fn(u32) -> Option<u32>) -> RoaringBitmap {
    RoaringBitmap::from_sorted_iter(bitmap.iter().filter_map(map))
        .unwrap_or_else(|_| bitmap.iter().filter_map(map).collect())
}
