//! Typed changes to an app's index: what a committed directory write did to one account (or to
//! one attribute slot), applied with [`AppIndex::apply`].
//!
//! The store reports what a write changed; the server turns that report into [`IndexChange`]s
//! and hands them to the index in one place, so every way the index can change is listed here.

use crate::index::AppIndex;

/// One change to the index, borrowing its names from the store's report of the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange<'a> {
    /// The account became eligible: imported, or logged in for the first time.
    AccountAdded { account: u32 },
    /// The account was deleted: it leaves every tag, attribute, platform and package.
    AccountRemoved { account: u32 },
    /// The account gained these tags; tags it has already are kept once.
    TagsAdded { account: u32, tags: Vec<&'a str> },
    /// The account lost these tags; tags it does not have are ignored.
    TagsRemoved { account: u32, tags: Vec<&'a str> },
    /// The account's tags are exactly these now. Scans every tag of the app to find the old
    /// ones: when the old tags are known, prefer [`IndexChange::TagsAdded`] and
    /// [`IndexChange::TagsRemoved`] with the difference.
    TagsReplaced { account: u32, tags: Vec<&'a str> },
    /// The account's value of one attribute slot is `value` now (`None`: it has none).
    AttributeSet { account: u32, slot: u8, value: Option<&'a str> },
    /// The account's value of the slot went from `before` to `after`, both known (the store
    /// read the old one): only the old value's set is touched, not every value's.
    AttributeChanged { account: u32, slot: u8, before: Option<&'a str>, after: Option<&'a str> },
    /// Every account lost its value of the slot: the app renamed or unnamed the attribute.
    AttributeSlotCleared { slot: u8 },
    /// The account's devices, as (platform, package) pairs, are exactly these now: a device was
    /// bound to it, moved away from it or unbound.
    DevicesReplaced { account: u32, devices: &'a [(String, String)] },
}

impl AppIndex {
    /// Applies one change.
    pub fn apply(&mut self, change: IndexChange<'_>) {
        match change {
            IndexChange::AccountAdded { account } => {
                self.insert_account(account);
            }
            IndexChange::AccountRemoved { account } => self.remove_account(account),
            IndexChange::TagsAdded { account, tags } => self.add_tags(account, &tags),
            IndexChange::TagsRemoved { account, tags } => self.remove_tags(account, &tags),
            IndexChange::TagsReplaced { account, tags } => self.set_tags(account, &tags),
            IndexChange::AttributeSet { account, slot, value } => {
                self.set_attribute(account, slot, value);
            }
            IndexChange::AttributeChanged { account, slot, before, after } => {
                self.change_attribute(account, slot, before, after);
            }
            IndexChange::AttributeSlotCleared { slot } => self.clear_attribute_slot(slot),
            IndexChange::DevicesReplaced { account, devices } => {
                self.set_devices(account, devices);
            }
        }
    }

    /// Applies changes in order.
    pub fn apply_all<'a>(&mut self, changes: impl IntoIterator<Item = IndexChange<'a>>) {
        for change in changes {
            self.apply(change);
        }
    }
}

#[cfg(test)]
mod tests;
