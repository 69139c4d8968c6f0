//! Bulk construction of an index at start-up, from the store's rows.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use crate::bitmaps::Bitmaps;
use crate::index::AppIndex;

/// Builds an [`AppIndex`] from the store's rows at start-up.
///
/// Rows may come in any order, but rows sorted by account id (`ORDER BY account_id`) are
/// appended in batches to the end of each bitmap instead of being inserted one by one, several
/// times faster. The store's rows are the truth, so an account has at most one value per
/// attribute slot.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    eligible: Column,
    tags: Columns,
    attributes: BTreeMap<u8, Columns>,
    platforms: Columns,
    packages: Columns,
}

/// A tag interned by [`IndexBuilder::tag_key`], for stores that read tags as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagKey(u32);

/// A value of an attribute slot interned by [`IndexBuilder::attribute_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeKey {
    slot: u8,
    value: u32,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// An eligible account.
    pub fn account(&mut self, id: u32) -> &mut Self {
        self.eligible.add(id);
        self
    }

    /// Tags of one account.
    pub fn tags<S: AsRef<str>>(&mut self, id: u32, tags: &[S]) -> &mut Self {
        for tag in tags {
            self.tags.add(tag.as_ref(), id);
        }
        self
    }

    /// The key of a tag, to add it to many accounts without looking its name up each time.
    pub fn tag_key(&mut self, tag: &str) -> TagKey {
        TagKey(self.tags.key(tag))
    }

    /// Tags of one account, by key.
    ///
    /// # Panics
    ///
    /// If a key was not made by this builder's [`tag_key`](Self::tag_key).
    pub fn tags_by_key(&mut self, id: u32, tags: &[TagKey]) -> &mut Self {
        for &TagKey(key) in tags {
            self.tags.add_by_key(key, id);
        }
        self
    }

    /// All members of one tag at once, for stores that read tag by tag.
    pub fn tag_members(&mut self, tag: &str, members: &RoaringBitmap) -> &mut Self {
        let key = self.tags.key(tag);
        self.tags.column(key).merge(members);
        self
    }

    /// An account's value of one attribute slot.
    pub fn attribute(&mut self, id: u32, slot: u8, value: &str) -> &mut Self {
        self.attributes.entry(slot).or_default().add(value, id);
        self
    }

    /// The key of one value of an attribute slot, to give it to many accounts without looking
    /// the value up each time.
    pub fn attribute_key(&mut self, slot: u8, value: &str) -> AttributeKey {
        AttributeKey { slot, value: self.attributes.entry(slot).or_default().key(value) }
    }

    /// An account's value of one attribute slot, by key.
    ///
    /// # Panics
    ///
    /// If a key was not made by this builder's [`attribute_key`](Self::attribute_key).
    pub fn attribute_by_key(&mut self, id: u32, key: AttributeKey) -> &mut Self {
        self.attributes.entry(key.slot).or_default().add_by_key(key.value, id);
        self
    }

    /// One device of an account.
    pub fn device(&mut self, id: u32, platform: &str, package: &str) -> &mut Self {
        self.platforms.add(platform, id);
        self.packages.add(package, id);
        self
    }

    /// The index.
    pub fn finish(self) -> AppIndex {
        let eligible = self.eligible.finish();
        let mut strays = RoaringBitmap::new();
        let mut finish = |columns: Columns| {
            let bitmaps = columns.finish();
            // Rows of ineligible accounts are rare; the subset test finds them without allocating.
            for (_, bitmap) in bitmaps.iter() {
                if !bitmap.is_subset(&eligible) {
                    strays |= bitmap - &eligible;
                }
            }
            bitmaps
        };
        let tags = finish(self.tags);
        let platforms = finish(self.platforms);
        let packages = finish(self.packages);
        let attributes = self
            .attributes
            .into_iter()
            .map(|(slot, values)| (slot, finish(values)))
            .filter(|(_, values)| !values.is_empty())
            .collect();
        AppIndex { eligible, strays, tags, attributes, platforms, packages }
    }
}

/// Names (tags, values, platforms or packages) to the columns of their members.
#[derive(Debug, Default)]
struct Columns {
    keys: HashMap<Box<str>, u32>,
    columns: Vec<(Box<str>, Column)>,
}

impl Columns {
    fn key(&mut self, name: &str) -> u32 {
        if let Some(&key) = self.keys.get(name) {
            return key;
        }
        // More than u32::MAX distinct names cannot fit in memory anyway.
        let key = u32::try_from(self.columns.len()).unwrap_or(u32::MAX);
        self.keys.insert(name.into(), key);
        self.columns.push((name.into(), Column::default()));
        key
    }

    fn column(&mut self, key: u32) -> &mut Column {
        let index = usize::try_from(key).unwrap_or(usize::MAX);
        &mut self.columns[index].1
    }

    fn add(&mut self, name: &str, id: u32) {
        let key = self.key(name);
        self.column(key).add(id);
    }

    fn add_by_key(&mut self, key: u32, id: u32) {
        self.column(key).add(id);
    }

    fn finish(self) -> Bitmaps {
        Bitmaps::from_entries(
            self.columns.into_iter().map(|(name, column)| (name, column.finish())),
        )
    }
}

/// Ids appended in batches: `RoaringBitmap::append` finds the bitmap's end once per batch, where
/// `push` would search for it on every id.
#[derive(Debug, Default)]
struct Column {
    bitmap: RoaringBitmap,
    pending: Vec<u32>,
}

impl Column {
    const BATCH: usize = 256;

    fn add(&mut self, id: u32) {
        if self.pending.len() == Self::BATCH || self.pending.last().is_some_and(|&last| last >= id)
        {
            self.flush();
        }
        self.pending.push(id);
    }

    fn merge(&mut self, members: &RoaringBitmap) {
        self.flush();
        self.bitmap |= members;
    }

    fn flush(&mut self) {
        if let Err(unsorted) = self.bitmap.append(self.pending.iter().copied()) {
            // Rows out of order: insert what could not be appended.
            for &id in
                self.pending.iter().skip(usize::try_from(unsorted.valid_until()).unwrap_or(0))
            {
                self.bitmap.insert(id);
            }
        }
        self.pending.clear();
    }

    /// The members. Bitmaps grown one id at a time keep up to half of their array containers'
    /// capacity unused; a clone allocates exactly what is used.
    fn finish(mut self) -> RoaringBitmap {
        self.flush();
        self.bitmap.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsorted_rows_build_the_same_index_as_mutations() {
        let mut builder = IndexBuilder::new();
        builder.account(5).account(1).account(70_000);
        builder.tags(5, &["a"]).tags(1, &["a", "b"]).tags(70_000, &["a"]);
        builder.tag_members("c", &RoaringBitmap::from_iter([1, 5]));
        builder.attribute(5, 3, "gold").attribute(1, 3, "silver");
        builder.device(1, "ios", "com.x").device(1, "android", "com.x");
        let built = builder.finish();

        let mut index = AppIndex::default();
        for id in [1, 5, 70_000] {
            index.insert_account(id);
        }
        index.add_tags(1, &["b", "a", "c"]);
        index.add_tags(5, &["a", "c"]);
        index.add_tags(70_000, &["a"]);
        index.set_attribute(1, 3, Some("silver"));
        index.set_attribute(5, 3, Some("gold"));
        index.set_devices(1, &[("android", "com.x"), ("ios", "com.x")]);
        assert_eq!(built, index);
    }

    #[test]
    fn batches_and_keys_give_the_same_members() {
        let mut builder = IndexBuilder::new();
        let a = builder.tag_key("a");
        let ids: Vec<u32> = (0..2_000).map(|i| i * 37).chain([5, 3, 1_000_000]).collect();
        for &id in &ids {
            builder.account(id).tags_by_key(id, &[a]);
        }
        assert_eq!(builder.tag_key("a"), a);
        let gold = builder.attribute_key(3, "gold");
        let mut by_name = IndexBuilder::new();
        for &id in ids.iter().filter(|&&id| id % 2 == 1) {
            builder.attribute_by_key(id, gold);
            by_name.attribute(id, 3, "gold");
        }
        assert_eq!(builder.attribute_key(3, "gold"), gold);
        assert_ne!(builder.attribute_key(4, "gold"), gold);
        let index = builder.finish();
        let expected: RoaringBitmap = ids.iter().copied().collect();
        assert_eq!(index.eligible(), &expected);
        assert_eq!(index.tag_members("a"), Some(&expected));
        for &id in &ids {
            by_name.account(id).tags(id, &["a"]);
        }
        assert_eq!(index, by_name.finish());
    }

    #[test]
    fn empty_member_lists_leave_no_trace() {
        let mut builder = IndexBuilder::new();
        builder.tag_members("a", &RoaringBitmap::new());
        builder.tag_key("b");
        assert_eq!(builder.finish().tag_count(), 0);
    }
}
