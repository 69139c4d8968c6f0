//! Faults a push service meets in production, provoked against the real binary: the disk
//! filling up, vendor endpoints misbehaving for minutes, the app's webhook receiver down for
//! an hour, the wall clock jumping under the scheduler. Long outages are compressed with
//! settings; the storage and retry code that runs is the real one.
#![allow(clippy::unwrap_used)]

#[path = "faults/clock_jumps.rs"]
mod clock_jumps;
mod common;
#[path = "faults/disk_full.rs"]
mod disk_full;
#[path = "faults/vendor_endpoints.rs"]
mod vendor_endpoints;
#[path = "faults/webhook_receiver.rs"]
mod webhook_receiver;
