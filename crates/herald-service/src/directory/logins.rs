//! Devices that logged in lately, remembered so that the reconnect of an unchanged install
//! reads nothing from the store: after a restart of the network or of a load balancer, every
//! client of an app reconnects at once, and a store read each would hold the whole storm up.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use herald_core::account::{AccountId, Device};
use herald_store::DeviceBinding;

/// Devices remembered per app, at most. An entry is about 50 bytes.
pub(super) const RECENT_LOGINS: usize = 1_000_000;

/// The bindings of devices that logged in or were registered lately, as the store holds them.
///
/// Entries hold a 128-bit fingerprint of the account name and every device field instead of
/// the fields themselves (ten times less memory); a login whose fingerprint matches changes
/// nothing in the store. The keys are random per process, so no client can make two devices
/// share a fingerprint. Two generations bound the memory: when the young one is full it
/// becomes the old one, and the old one is dropped.
pub(super) struct RecentLogins {
    hashing: [RandomState; 3],
    capacity: usize,
    generations: Mutex<Generations>,
}

/// The young generation, then the old one.
type Generations = [HashMap<u64, Remembered>; 2];

#[derive(Clone, Copy, PartialEq, Eq)]
struct Remembered {
    fingerprint: u128,
    account_id: AccountId,
    device_key: u32,
}

impl RecentLogins {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            hashing: [RandomState::new(), RandomState::new(), RandomState::new()],
            capacity: capacity.max(2),
            generations: Mutex::default(),
        }
    }

    /// The binding of `device` to `account` if it is what the store holds.
    pub(super) fn unchanged(&self, account: &str, device: &Device) -> Option<DeviceBinding> {
        let key = self.key(&device.device_id);
        let fingerprint = self.fingerprint(account, device);
        let mut generations = self.lock();
        let found = match generations[0].get(&key) {
            Some(found) => *found,
            None => {
                let found = generations[1].remove(&key)?;
                self.insert(&mut generations, key, found);
                found
            }
        };
        (found.fingerprint == fingerprint).then_some(DeviceBinding {
            account_id: found.account_id,
            device_key: found.device_key,
            new_account: false,
            changed: Vec::new(),
        })
    }

    /// Remembers what the store now holds for `device`.
    pub(super) fn remember(&self, account: &str, device: &Device, binding: &DeviceBinding) {
        let key = self.key(&device.device_id);
        let remembered = Remembered {
            fingerprint: self.fingerprint(account, device),
            account_id: binding.account_id,
            device_key: binding.device_key,
        };
        let mut generations = self.lock();
        generations[1].remove(&key);
        self.insert(&mut generations, key, remembered);
    }

    /// Inserts into the young generation, which becomes the old one first if it is full.
    fn insert(&self, generations: &mut Generations, key: u64, remembered: Remembered) {
        let half = self.capacity / 2;
        let [young, old] = generations;
        if young.len() >= half && !young.contains_key(&key) {
            *old = std::mem::take(young);
        }
        young.insert(key, remembered);
    }

    /// Forgets a device the store changed some other way.
    pub(super) fn forget(&self, device_id: &str) {
        let key = self.key(device_id);
        let mut generations = self.lock();
        generations.iter_mut().for_each(|generation| {
            generation.remove(&key);
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().iter().map(HashMap::len).sum()
    }

    /// Two devices whose ids share a key differ in their fingerprint, which covers the id.
    fn key(&self, device_id: &str) -> u64 {
        self.hashing[0].hash_one(device_id)
    }

    fn fingerprint(&self, account: &str, device: &Device) -> u128 {
        let half = |hashing: &RandomState| hashing.hash_one((account, device));
        u128::from(half(&self.hashing[1])) << 64 | u128::from(half(&self.hashing[2]))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> Device {
        Device {
            device_id: id.into(),
            platform: "ios".into(),
            package: "com.x".into(),
            vendor_token: None,
            app_version: Some("1.0".into()),
            locale: None,
            time_zone: None,
        }
    }

    fn binding(account_id: AccountId) -> DeviceBinding {
        DeviceBinding {
            account_id,
            device_key: account_id + 100,
            new_account: true,
            changed: vec![],
        }
    }

    #[test]
    fn only_an_unchanged_login_is_known() {
        let logins = RecentLogins::new(100);
        let d1 = device("d1");
        assert_eq!(logins.unchanged("a", &d1), None);
        logins.remember("a", &d1, &binding(1));
        let known = logins.unchanged("a", &d1).unwrap();
        assert_eq!((known.account_id, known.device_key, known.new_account), (1, 101, false));
        assert_eq!(logins.unchanged("b", &d1), None, "another account");
        let upgraded = Device { app_version: Some("1.1".into()), ..d1.clone() };
        assert_eq!(logins.unchanged("a", &upgraded), None, "another field");
        assert_eq!(logins.unchanged("a", &device("d2")), None, "another device");
        logins.forget("d1");
        assert_eq!(logins.unchanged("a", &d1), None, "forgotten");
    }

    #[test]
    fn memory_is_bounded_and_recent_logins_stay() {
        let logins = RecentLogins::new(10);
        let d0 = device("d0");
        logins.remember("a", &d0, &binding(0));
        for i in 1..100 {
            logins.remember("a", &device(&format!("d{i}")), &binding(i));
            // Used often, so it moves back to the young generation each time.
            assert!(logins.unchanged("a", &d0).is_some(), "after {i}");
            assert!(logins.len() <= 10);
        }
        assert!(logins.unchanged("a", &device("d1")).is_none(), "long unused");
        assert!(logins.unchanged("a", &device("d99")).is_some());
    }
}
