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

    /// Reallocates every bitmap to its exact size. Bitmaps grown one id at a time keep up to half
    /// of their array containers' capacity unused; a clone allocates exactly what is used.
    pub(crate) fn shrink(&mut self) {
        for bitmap in self.0.values_mut() {
            *bitmap = bitmap.clone();
        }
        self.0.shrink_to_fit();
    }

    /// Bytes held: bitmaps at their serialized size (close to their heap size), names, and the
    /// hash table's slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        let slots = self.0.capacity() * (size_of::<(Box<str>, RoaringBitmap)>() + 1);
        let contents: usize =
            self.0.iter().map(|(name, bitmap)| name.len() + bitmap.serialized_size()).sum();
        slots + contents
    }
}
