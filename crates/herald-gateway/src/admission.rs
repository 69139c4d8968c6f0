//! Admission of connections: how many one IP address may hold, how many may wait for their
//! hello, and how many sessions one app may have. Each admitted connection holds a slot that
//! gives its place back when dropped, however the connection ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use herald_core::AppId;

use crate::settings::GatewaySettings;

/// Counts of open connections by IP address, of unidentified connections and of sessions by
/// app, against the gateway's limits.
#[derive(Debug)]
pub(crate) struct Admission {
    open: AtomicUsize,
    max_open: usize,
    per_ip: Counts<IpAddr>,
    per_app: Counts<AppId>,
    unidentified: AtomicUsize,
    max_unidentified: usize,
}

/// Why a connection was not admitted before its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The gateway holds `max_connections` connections.
    Full(usize),
    /// Its IP address has `max_connections_per_ip` connections open.
    PerIp(usize),
    /// `max_unidentified` connections are waiting for their hello.
    Unidentified(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Full(max) => write!(
                f,
                "the server holds all the connections it may (max_connections = {max}); retry later"
            ),
            Refusal::PerIp(max) => {
                write!(f, "too many connections from this address (max_connections_per_ip = {max})")
            }
            Refusal::Unidentified(max) => write!(
                f,
                "too many connections waiting for their hello (max_unidentified = {max}); retry later"
            ),
        }
    }
}

/// A new connection's places: its address's and, until its hello arrives, an unidentified one.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) conn: ConnSlot,
    pub(crate) hello: HelloSlot,
}

impl Admission {
    /// Admission under `settings`, holding at most `max_open` connections in all.
    pub(crate) fn new(settings: &GatewaySettings, max_open: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max_open,
            per_ip: Counts::new(settings.max_connections_per_ip),
            per_app: Counts::new(settings.max_connections_per_app),
            unidentified: AtomicUsize::new(0),
            max_unidentified: settings.max_unidentified,
        })
    }

    /// Admits a connection from `ip` (unknown when the server was not given peer addresses:
    /// then only the unidentified limit applies).
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Admitted, Refusal> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_open {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Full(self.max_open));
        }
        // From here the slot gives the place back, on every return below too.
        let mut slot = ConnSlot { admission: self.clone(), ip: None };
        let hello = self.wait_for_hello()?;
        if let Some(ip) = ip {
            if !self.per_ip.take(ip) {
                return Err(Refusal::PerIp(self.per_ip.max));
            }
            slot.ip = Some(ip);
        }
        Ok(Admitted { conn: slot, hello })
    }

    fn wait_for_hello(self: &Arc<Self>) -> Result<HelloSlot, Refusal> {
        let taken = self.unidentified.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max_unidentified {
            self.unidentified.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Unidentified(self.max_unidentified));
        }
        Ok(HelloSlot { admission: self.clone() })
    }

    /// A session's place among its app's, or `None` when the app has `max_connections_per_app`.
    pub(crate) fn join_app(self: &Arc<Self>, app: AppId) -> Option<AppSlot> {
        self.per_app.take(app).then(|| AppSlot { admission: self.clone(), app })
    }

    /// Connections that have not said hello yet.
    pub(crate) fn unidentified(&self) -> usize {
        self.unidentified.load(Ordering::Acquire)
    }

    /// The app's limit, for the rejection message.
    pub(crate) fn max_per_app(&self) -> usize {
        self.per_app.max
    }
}

/// Holds one connection's place among all and, once taken, among its IP address's.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.admission.per_ip.give_back(ip);
        }
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one unidentified place until the hello arrives (or the connection ends).
#[derive(Debug)]
pub(crate) struct HelloSlot {
    admission: Arc<Admission>,
}

impl Drop for HelloSlot {
    fn drop(&mut self) {
        self.admission.unidentified.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one place among an app's sessions.
#[derive(Debug)]
pub(crate) struct AppSlot {
    admission: Arc<Admission>,
    app: AppId,
}

impl Drop for AppSlot {
    fn drop(&mut self) {
        self.admission.per_app.give_back(self.app);
    }
}

/// Open connections per key, none above `max`. Keys at zero are removed, so the map holds only
/// addresses and apps with connections.
#[derive(Debug)]
struct Counts<K> {
    counts: Mutex<HashMap<K, usize>>,
    max: usize,
}

impl<K: Eq + Hash> Counts<K> {
    fn new(max: usize) -> Self {
        Self { counts: Mutex::default(), max }
    }

    fn take(&self, key: K) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_default();
        if *count >= self.max {
            return false;
        }
        *count += 1;
        true
    }

    fn give_back(&self, key: K) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_ip: usize, per_app: usize, unidentified: usize) -> Arc<Admission> {
        let settings = GatewaySettings {
            max_connections_per_ip: per_ip,
            max_connections_per_app: per_app,
            max_unidentified: unidentified,
            ..GatewaySettings::default()
        };
        Admission::new(&settings, 1_000)
    }

    #[test]
    fn the_gateway_holds_at_most_its_connections_and_a_refusal_holds_none() {
        let admission = Admission::new(&GatewaySettings::default(), 2);
        let a: IpAddr = [127, 0, 0, 2].into();
        let first = admission.admit(Some(a)).unwrap();
        let _second = admission.admit(None).unwrap();
        assert_eq!(admission.admit(Some(a)).unwrap_err(), Refusal::Full(2));
        assert_eq!(admission.unidentified(), 2);
        // The hello ends the unidentified place, not the connection's.
        let Admitted { conn, hello } = first;
        drop(hello);
        assert_eq!(admission.admit(None).unwrap_err(), Refusal::Full(2));
        drop(conn);
        let _third = admission.admit(Some(a)).unwrap();
    }

    #[test]
    fn a_refusal_by_address_or_hello_gives_the_connection_place_back() {
        let settings = GatewaySettings {
            max_connections_per_ip: 1,
            max_unidentified: 2,
            ..Default::default()
        };
        let admission = Admission::new(&settings, 3);
        let a: IpAddr = [127, 0, 0, 2].into();
        let _first = admission.admit(Some(a)).unwrap();
        for _ in 0..5 {
            assert_eq!(admission.admit(Some(a)).unwrap_err(), Refusal::PerIp(1));
        }
        let _second = admission.admit(None).unwrap();
        for _ in 0..5 {
            assert_eq!(admission.admit(None).unwrap_err(), Refusal::Unidentified(2));
        }
        assert_eq!(admission.open.load(Ordering::Acquire), 2);
    }

    #[test]
    fn an_address_gets_its_limit_and_its_places_back() {
        let admission = admission(2, 10, 10);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = admission.admit(Some(a)).unwrap();
        let _second = admission.admit(Some(a)).unwrap();
        assert_eq!(admission.admit(Some(a)).unwrap_err(), Refusal::PerIp(2));
        // A refusal holds nothing.
        assert_eq!(admission.unidentified(), 2);
        let _other = admission.admit(Some(b)).unwrap();
        drop(first);
        let _third = admission.admit(Some(a)).unwrap();
        assert!(admission.admit(None).is_ok(), "no address, no address limit");
    }

    #[test]
    fn unidentified_places_end_with_the_hello() {
        let admission = admission(100, 10, 2);
        let first = admission.admit(None).unwrap();
        let second = admission.admit(None).unwrap();
        assert_eq!(admission.admit(None).unwrap_err(), Refusal::Unidentified(2));
        let Admitted { conn: _conn, hello } = first;
        drop(hello);
        assert_eq!(admission.unidentified(), 1);
        assert!(admission.admit(None).is_ok());
        drop(second);
        assert_eq!(admission.unidentified(), 0);
    }

    #[test]
    fn apps_have_their_own_counts() {
        let admission = admission(100, 1, 10);
        let slot = admission.join_app(1).unwrap();
        assert!(admission.join_app(1).is_none());
        let _other_app = admission.join_app(2).unwrap();
        drop(slot);
        assert!(admission.join_app(1).is_some());
        drop(_other_app);
        assert_eq!(admission.per_app.len(), 0, "empty counts are removed");
    }
}
