//! Per-app audience index on Roaring bitmaps: which accounts carry a tag, an attribute value, a
//! platform or a package, and the evaluation of an audience [`Plan`](herald_core::audience::Plan)
//! to the bitmap of accounts it selects.
//!
//! The index never assigns ids and never reads storage: the store owns the dense `u32` account
//! ids, rebuilds an index at start-up with [`IndexBuilder`] and applies every committed write to
//! it as [`IndexChange`]s with [`AppIndex::apply`]. The server holds one `Arc<RwLock<AppIndex>>`
//! per app; an evaluation of 10 M accounts takes milliseconds, so a std lock held across it is
//! cheaper than an async one.

mod bitmaps;
mod builder;
mod change;
mod evaluate;
mod index;
#[cfg(feature = "synthetic")]
pub mod synthetic;

pub use builder::{AttributeKey, IndexBuilder, TagKey};
pub use change::IndexChange;
pub use evaluate::AccountLookup;
pub use index::AppIndex;
pub use roaring::RoaringBitmap;
