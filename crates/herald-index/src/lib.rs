//! Per-app audience index on Roaring bitmaps.
