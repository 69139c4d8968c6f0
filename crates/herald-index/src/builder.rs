//! Bulk construction of an index at start-up, from the store's rows.

use roaring::RoaringBitmap;

use crate::index::AppIndex;

/// Builds an [`AppIndex`] from the store's rows at start-up.
///
/// Rows may come in any order, but rows sorted by account id (`ORDER BY account_id`) are
/// appended to the end of each bitmap instead of being inserted: no search, no shifting. The
/// store's rows are the truth, so an account has at most one value per attribute slot.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    index: AppIndex,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// An eligible account.
    pub fn account(&mut self, id: u32) -> &mut Self {
        append(&mut self.index.eligible, id);
        self
    }

    /// Tags of one account.
    pub fn tags<S: AsRef<str>>(&mut self, id: u32, tags: &[S]) -> &mut Self {
        for tag in tags {
            self.index.tags.update(tag.as_ref(), |bitmap| append(bitmap, id));
        }
        self
    }

    /// All members of one tag at once, for stores that read tag by tag.
    pub fn tag_members(&mut self, tag: &str, members: &RoaringBitmap) -> &mut Self {
        self.index.tags.update(tag, |bitmap| *bitmap |= members);
        self
    }

    /// An account's value of one attribute slot.
    pub fn attribute(&mut self, id: u32, slot: u8, value: &str) -> &mut Self {
        self.index.attributes.entry(slot).or_default().update(value, |bitmap| append(bitmap, id));
        self
    }

    /// One device of an account.
    pub fn device(&mut self, id: u32, platform: &str, package: &str) -> &mut Self {
        self.index.platforms.update(platform, |bitmap| append(bitmap, id));
        self.index.packages.update(package, |bitmap| append(bitmap, id));
        self
    }

    /// The index, with every bitmap trimmed to its exact size.
    pub fn finish(mut self) -> AppIndex {
        let index = &mut self.index;
        index.eligible = index.eligible.clone();
        index.tags.shrink();
        index.attributes.values_mut().for_each(|values| values.shrink());
        index.platforms.shrink();
        index.packages.shrink();
        self.index
    }
}

/// Appends when `id` is past the largest member (sorted input), inserts otherwise.
fn append(bitmap: &mut RoaringBitmap, id: u32) {
    if !bitmap.push(id) {
        bitmap.insert(id);
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
    fn empty_member_lists_leave_no_trace() {
        let mut builder = IndexBuilder::new();
        builder.tag_members("a", &RoaringBitmap::new());
        assert_eq!(builder.finish().tag_count(), 0);
    }
}
