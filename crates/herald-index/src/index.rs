//! The index of one app and the mutators the store calls after each committed write.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::size_of;

use roaring::RoaringBitmap;

use crate::bitmaps::{bitmap_bytes, remap, Bitmaps};

/// The audience index of one app: the eligible accounts (imported or logged in) and a bitmap of
/// account ids per tag, per (attribute slot, value), per platform and per package.
///
/// Memory is what the bitmaps take, about 2 bytes per (account, tag) pair in sparse tags and
/// 1 bit per account in dense ones. No per-account record is kept: finding an account's current
/// tags, value or devices scans the names in use (tags of the app, values of one slot, platforms,
/// packages), which keeps 10 M accounts within the memory budget at the price of slower
/// replace-style writes.
///
/// Ids outside the eligible set may carry tags and attributes (the store decides when an account
/// becomes eligible); evaluation never selects them.
#[derive(Debug, Clone, Default)]
pub struct AppIndex {
    pub(crate) eligible: RoaringBitmap,
    /// A superset of the ids that are in some bitmap without being eligible. Usually empty, and
    /// then evaluation skips the final intersection with `eligible`, the most expensive step of a
    /// simple audience. It may keep ids whose entries have since gone; subtracting them is
    /// harmless.
    pub(crate) strays: RoaringBitmap,
    pub(crate) tags: Bitmaps,
    /// Per slot, its values; a slot without values is absent.
    pub(crate) attributes: BTreeMap<u8, Bitmaps>,
    pub(crate) platforms: Bitmaps,
    pub(crate) packages: Bitmaps,
}

impl AppIndex {
    /// Makes an account eligible (imported, or logged in for the first time). Returns whether it
    /// was not eligible before.
    pub fn insert_account(&mut self, id: u32) -> bool {
        self.strays.remove(id);
        self.eligible.insert(id)
    }

    /// Forgets an account: not eligible, and in no tag, attribute, platform or package.
    pub fn remove_account(&mut self, id: u32) {
        self.eligible.remove(id);
        self.strays.remove(id);
        self.tags.remove_everywhere(id);
        self.attributes.values_mut().for_each(|values| values.remove_everywhere(id));
        self.attributes.retain(|_, values| !values.is_empty());
        self.platforms.remove_everywhere(id);
        self.packages.remove_everywhere(id);
    }

    /// Forgets many accounts at once; one pass over the names, whatever the number of ids.
    pub fn remove_accounts(&mut self, ids: &RoaringBitmap) {
        self.eligible -= ids;
        self.strays -= ids;
        self.tags.remove_all(ids);
        self.attributes.values_mut().for_each(|values| values.remove_all(ids));
        self.attributes.retain(|_, values| !values.is_empty());
        self.platforms.remove_all(ids);
        self.packages.remove_all(ids);
    }

    /// Adds all of `batch`: its eligible accounts, and its members of every tag, attribute
    /// value, platform and package. A bulk import builds the bitmaps of a batch apart and
    /// merges them: one union per name instead of one insertion per (account, name).
    pub fn merge(&mut self, batch: AppIndex) {
        self.strays |= batch.strays;
        self.strays -= &batch.eligible;
        self.eligible |= batch.eligible;
        self.tags.merge(batch.tags);
        for (slot, values) in batch.attributes {
            self.attributes.entry(slot).or_default().merge(values);
        }
        self.platforms.merge(batch.platforms);
        self.packages.merge(batch.packages);
    }

    /// This index with every account `id` renamed `map(id)`, or left out for `None`. A batch
    /// built before its accounts had ids (numbered by position) gets their ids this way; an
    /// increasing `map` is the fast case.
    pub fn remap(&self, map: impl Fn(u32) -> Option<u32>) -> AppIndex {
        let attributes = self
            .attributes
            .iter()
            .map(|(slot, values)| (*slot, values.remap(&map)))
            .filter(|(_, values)| !values.is_empty())
            .collect();
        AppIndex {
            eligible: remap(&self.eligible, &map),
            strays: remap(&self.strays, &map),
            tags: self.tags.remap(&map),
            attributes,
            platforms: self.platforms.remap(&map),
            packages: self.packages.remap(&map),
        }
    }

    /// Tags in use, in no particular order.
    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|(tag, _)| tag)
    }

    /// Adds tags to an account; tags it already has are kept once.
    pub fn add_tags<S: AsRef<str>>(&mut self, id: u32, tags: &[S]) {
        if !tags.is_empty() {
            self.note(id);
        }
        for tag in tags {
            self.tags.insert(tag.as_ref(), id);
        }
    }

    /// Removes tags from an account; tags it does not have are ignored.
    pub fn remove_tags<S: AsRef<str>>(&mut self, id: u32, tags: &[S]) {
        for tag in tags {
            self.tags.remove(tag.as_ref(), id);
        }
    }

    /// Removes every tag of an account (scans the app's tags).
    pub fn clear_tags(&mut self, id: u32) {
        self.tags.remove_everywhere(id);
    }

    /// Replaces all tags of an account (scans the app's tags).
    pub fn set_tags<S: AsRef<str>>(&mut self, id: u32, tags: &[S]) {
        self.clear_tags(id);
        self.add_tags(id, tags);
    }

    /// Sets (or with `None` removes) an account's value of one attribute slot, replacing its
    /// previous value (found by scanning the slot's values).
    pub fn set_attribute(&mut self, id: u32, slot: u8, value: Option<&str>) {
        if value.is_some() {
            self.note(id);
        }
        let values = self.attributes.entry(slot).or_default();
        values.remove_everywhere(id);
        if let Some(value) = value {
            values.insert(value, id);
        }
        if values.is_empty() {
            self.attributes.remove(&slot);
        }
    }

    /// [`AppIndex::set_attribute`] when the old value is known: the account leaves that value's
    /// set only, however many values the slot has.
    pub fn change_attribute(
        &mut self,
        id: u32,
        slot: u8,
        before: Option<&str>,
        after: Option<&str>,
    ) {
        if before == after {
            return;
        }
        if after.is_some() {
            self.note(id);
        }
        let values = self.attributes.entry(slot).or_default();
        if let Some(before) = before {
            values.remove(before, id);
        }
        if let Some(after) = after {
            values.insert(after, id);
        }
        if values.is_empty() {
            self.attributes.remove(&slot);
        }
    }

    /// Forgets a slot's values for every account: the app removed or renamed the attribute.
    pub fn clear_attribute_slot(&mut self, slot: u8) {
        self.attributes.remove(&slot);
    }

    /// Replaces an account's devices, given as (platform, package) pairs: afterwards it is in
    /// exactly the platforms and packages of these devices.
    pub fn set_devices<P: AsRef<str>, K: AsRef<str>>(&mut self, id: u32, devices: &[(P, K)]) {
        self.platforms.remove_everywhere(id);
        self.packages.remove_everywhere(id);
        if !devices.is_empty() {
            self.note(id);
        }
        for (platform, package) in devices {
            self.platforms.insert(platform.as_ref(), id);
            self.packages.insert(package.as_ref(), id);
        }
    }

    /// Records that `id` enters a bitmap, which matters only if it is not eligible.
    fn note(&mut self, id: u32) {
        if !self.eligible.contains(id) {
            self.strays.insert(id);
        }
    }

    /// The eligible accounts: what `all` selects and what `not` is relative to.
    pub fn eligible(&self) -> &RoaringBitmap {
        &self.eligible
    }

    /// The accounts carrying a tag, eligible or not.
    pub fn tag_members(&self, tag: &str) -> Option<&RoaringBitmap> {
        self.tags.get(tag)
    }

    /// Distinct tags in use, for the `distinct_tags` limit.
    pub fn tag_count(&self) -> usize {
        self.tags.len()
    }

    /// Whether a tag is in use (a new tag counts against `distinct_tags`, an existing one does not).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.get(tag).is_some()
    }

    /// The tags of an account, sorted (scans the app's tags).
    pub fn tags_of(&self, id: u32) -> BTreeSet<&str> {
        self.tags.iter().filter(|(_, bitmap)| bitmap.contains(id)).map(|(tag, _)| tag).collect()
    }

    /// How many accounts of `audience` have a device of each platform; an account with devices
    /// of two platforms counts in both. Platforms in use but absent from the audience count 0.
    pub fn platform_split(&self, audience: &RoaringBitmap) -> BTreeMap<String, u64> {
        self.platforms
            .iter()
            .map(|(platform, bitmap)| (platform.to_owned(), bitmap.intersection_len(audience)))
            .collect()
    }

    /// How many accounts of `audience` have no device at all: reachable only once they connect.
    pub fn without_device(&self, audience: &RoaringBitmap) -> u64 {
        let mut rest = audience.clone();
        for (_, bitmap) in self.platforms.iter() {
            rest -= bitmap;
        }
        rest.len()
    }

    /// An estimate of the heap bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        let attributes: usize = self
            .attributes
            .values()
            .map(|values| size_of::<(u8, Bitmaps)>() + values.memory_bytes())
            .sum();
        bitmap_bytes(&self.eligible)
            + bitmap_bytes(&self.strays)
            + self.tags.memory_bytes()
            + attributes
            + self.platforms.memory_bytes()
            + self.packages.memory_bytes()
    }
}

/// Equal when they select the same accounts for every plan; `strays` is a cache and may differ.
impl PartialEq for AppIndex {
    fn eq(&self, other: &Self) -> bool {
        self.eligible == other.eligible
            && self.tags == other.tags
            && self.attributes == other.attributes
            && self.platforms == other.platforms
            && self.packages == other.packages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AppIndex>();
        assert_send_sync::<std::sync::Arc<std::sync::RwLock<AppIndex>>>();
    }

    #[test]
    fn removing_the_last_member_forgets_the_name() {
        let mut index = AppIndex::default();
        index.add_tags(1, &["a", "b"]);
        index.add_tags(2, &["a"]);
        assert_eq!(index.tag_count(), 2);
        index.remove_tags(1, &["b", "never"]);
        assert_eq!(index.tag_count(), 1);
        index.remove_account(2);
        index.remove_account(1);
        assert_eq!(index, AppIndex::default());
    }

    #[test]
    fn a_known_old_value_is_replaced_without_visiting_the_others() {
        let mut index = AppIndex::default();
        index.change_attribute(7, 2, None, Some("gold"));
        index.change_attribute(8, 2, None, Some("gold"));
        index.change_attribute(7, 2, Some("gold"), Some("silver"));
        let values = &index.attributes[&2];
        assert_eq!(values.get("gold").map(RoaringBitmap::len), Some(1));
        assert_eq!(values.get("silver").map(RoaringBitmap::len), Some(1));
        index.change_attribute(8, 2, Some("gold"), Some("gold"));
        assert_eq!(index.attributes[&2].get("gold").map(RoaringBitmap::len), Some(1));
        index.change_attribute(7, 2, Some("silver"), None);
        index.change_attribute(8, 2, Some("gold"), None);
        assert!(index.attributes.is_empty());
    }

    #[test]
    fn set_attribute_replaces_the_old_value() {
        let mut index = AppIndex::default();
        index.set_attribute(7, 2, Some("gold"));
        index.set_attribute(8, 2, Some("gold"));
        index.set_attribute(7, 2, Some("silver"));
        let values = &index.attributes[&2];
        assert_eq!(values.get("gold").map(RoaringBitmap::len), Some(1));
        assert_eq!(values.get("silver").map(RoaringBitmap::len), Some(1));
        index.set_attribute(7, 2, None);
        index.set_attribute(8, 2, None);
        assert!(index.attributes.is_empty());
    }

    #[test]
    fn devices_are_replaced_and_split_by_platform() {
        let mut index = AppIndex::default();
        index.set_devices(1, &[("ios", "com.x"), ("android", "com.x")]);
        index.set_devices(2, &[("android", "com.y")]);
        index.set_devices(1, &[("ios", "com.x")]);
        let everyone = RoaringBitmap::from_iter([1, 2, 3]);
        let split = index.platform_split(&everyone);
        assert_eq!(split, BTreeMap::from([("android".into(), 1), ("ios".into(), 1)]));
        assert_eq!(index.without_device(&everyone), 1);
        assert!(index.packages.get("com.x").is_some_and(|b| b.contains(1) && !b.contains(2)));
    }

    #[test]
    fn a_merged_batch_equals_its_changes_applied_one_by_one() {
        let mut one_by_one = AppIndex::default();
        one_by_one.insert_account(1);
        one_by_one.add_tags(1, &["a"]);
        one_by_one.add_tags(9, &["a"]);
        let mut merged = one_by_one.clone();
        for (id, tags, city) in [(9, ["a", "b"], "sz"), (70_000, ["b", "c"], "bj")] {
            one_by_one.insert_account(id);
            one_by_one.add_tags(id, &tags);
            one_by_one.set_attribute(id, 2, Some(city));
        }
        one_by_one.set_devices(9, &[("ios", "com.x")]);
        // The batch numbered by position (0, 1, 2): 2 is a line that was not applied.
        let mut batch = crate::IndexBuilder::new();
        batch.account(0).tags(0, &["a", "b"]).attribute(0, 2, "sz").device(0, "ios", "com.x");
        batch.account(1).tags(1, &["b", "c"]).attribute(1, 2, "bj");
        batch.account(2).tags(2, &["d"]).attribute(2, 3, "x");
        let ids = [9, 70_000];
        let batch = batch.finish().remap(|at| ids.get(at as usize).copied());
        assert_eq!(batch.tag_names().count(), 3, "the line left out leaves no name behind");
        merged.merge(batch);
        assert_eq!(merged, one_by_one);
        assert!(merged.strays.is_empty(), "9 was a stray until the batch made it eligible");
        let reversed = merged.remap(|id| Some(u32::MAX - id));
        assert!(reversed.eligible.contains(u32::MAX - 70_000) && reversed.eligible.len() == 3);
    }

    #[test]
    fn tags_of_lists_an_accounts_tags() {
        let mut index = AppIndex::default();
        index.add_tags(1, &["b", "a"]);
        index.set_tags(2, &["c"]);
        index.set_tags(1, &["c", "b"]);
        assert_eq!(index.tags_of(1).into_iter().collect::<Vec<_>>(), ["b", "c"]);
        assert!(!index.has_tag("a"));
    }
}
