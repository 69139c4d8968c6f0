//! Gateway settings: queue sizes, timeouts and WebSocket buffer sizes, with their defaults.
//!
//! Durations are written as seconds (fractions allowed: `hello_timeout = 0.5`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the gateway treats connections. Defaults suit many mostly idle connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Frames that may wait for one connection's socket. A client that lets this many pile up
    /// is disconnected with 4009 (its pushes stay in its inbox), so a slow reader costs at most
    /// this many shared frames of memory and never slows the fan-out to others.
    pub queue_capacity: usize,
    /// How long a new connection may take to send its hello before it is closed with 4003.
    #[serde(with = "secs")]
    pub hello_timeout: Duration,
    /// Interval at which clients are told (in `welcome`) to send `ping`.
    #[serde(with = "secs")]
    pub heartbeat: Duration,
    /// A connection that sends no frame for this long is closed with 4008; three heartbeats so
    /// that one or two lost pings do not cost a reconnect.
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// How long the server tries to deliver a close frame before dropping the socket: a client
    /// that stopped reading would otherwise hold its connection open.
    #[serde(with = "secs")]
    pub close_timeout: Duration,
    /// Initial read buffer per connection, in bytes. Client frames are small (an ack is a few
    /// dozen bytes, a hello a few hundred) and the buffer grows to the largest frame read, then
    /// keeps that size; the growth from the hello is given back after it (a fresh buffer of
    /// this size) when the client sent nothing else yet. tungstenite's default of 128 KiB would
    /// cost gigabytes across many idle connections.
    pub read_buffer_size: usize,
    /// Bytes of frames gathered before they are written to the socket. The frames a session
    /// sends together (a page of stored pushes, pushes dispatched together) leave in one
    /// `send` up to this size, and whatever is gathered leaves when the session has queued
    /// them all; 0 writes each frame on its own. The buffer is freed once written out, so a
    /// connection that is idle holds none, whatever bursts it had.
    pub write_buffer_size: usize,
    /// Most bytes one connection may hold for writing (frames the client has not read yet)
    /// before sends wait.
    pub max_write_buffer_size: usize,
    /// Largest message (and frame) a client may send; larger ones close with 4004.
    pub max_frame_size: usize,
    /// How many stored pushes are fetched from the inbox per call while a device catches up.
    pub pending_page: usize,
    /// Open connections (identified or not) from one IP address; more are refused with HTTP
    /// 429 before the upgrade. High enough for a carrier NAT in front of many devices, low
    /// enough that one host cannot take the gateway's file descriptors.
    pub max_connections_per_ip: usize,
    /// Identified sessions of one app; a hello beyond it is answered with error
    /// `too_many_connections` and close 4012, so that one app (or a leaked app key) cannot
    /// crowd out the others.
    pub max_connections_per_app: usize,
    /// WebSocket connections held at once, identified or not; more are refused with HTTP 503
    /// before the upgrade. 0: the process's open-files limit less a reserve (a twentieth of it,
    /// 256 to 4,096), so that the API, the store and vendor connections still get a file
    /// when clients take all they can: at the limit, `accept` itself fails, and every caller
    /// of the API waits with the clients.
    pub max_connections: usize,
    /// Connections that have not sent their hello yet; more are refused with HTTP 503. Bounds
    /// what clients that connect and say nothing can hold between them within the hello
    /// timeout.
    pub max_unidentified: usize,
    /// Frames per second a client may send on average (acks, opens, pings, control frames);
    /// a client that exceeds it beyond `client_frame_burst` gets error `rate_limited` and
    /// close 4013.
    pub client_frame_rate: f64,
    /// Frames a client may send at once above `client_frame_rate`: a device acking each push
    /// of a page of stored ones must fit in it.
    pub client_frame_burst: u32,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            queue_capacity: 128,
            hello_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            close_timeout: Duration::from_secs(2),
            read_buffer_size: 256,
            write_buffer_size: 16 * 1024,
            max_write_buffer_size: 256 * 1024,
            max_frame_size: 64 * 1024,
            pending_page: 100,
            max_connections_per_ip: 5_000,
            max_connections_per_app: 1_000_000,
            max_connections: 0,
            max_unidentified: 20_000,
            client_frame_rate: 50.0,
            client_frame_burst: 500,
        }
    }
}

impl GatewaySettings {
    /// `max_connections` for a process that may open `open_files` files: the setting when
    /// given, else the limit less its reserve.
    pub fn connection_limit(&self, open_files: u64) -> usize {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let reserve = (open_files / 20).clamp(256, 4_096);
        usize::try_from(open_files.saturating_sub(reserve)).unwrap_or(usize::MAX).max(1)
    }

    /// Checks the settings for values that cannot work.
    ///
    /// # Errors
    /// A message naming the first bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue_capacity == 0 {
            return Err("queue_capacity must be at least 1".into());
        }
        if self.pending_page == 0 {
            return Err("pending_page must be at least 1".into());
        }
        if self.heartbeat.is_zero() || self.idle_timeout <= self.heartbeat {
            return Err("idle_timeout must be longer than a non-zero heartbeat".into());
        }
        if self.hello_timeout.is_zero() {
            return Err("hello_timeout must not be zero".into());
        }
        if self.max_frame_size < 1024 {
            return Err("max_frame_size must be at least 1024 bytes".into());
        }
        if self.max_connections_per_ip == 0
            || self.max_connections_per_app == 0
            || self.max_unidentified == 0
        {
            return Err(
                "max_connections_per_ip, max_connections_per_app and max_unidentified must be at least 1"
                    .into(),
            );
        }
        if !(self.client_frame_rate.is_finite() && self.client_frame_rate > 0.0) {
            return Err("client_frame_rate must be a positive number of frames per second".into());
        }
        if self.client_frame_burst == 0 {
            return Err("client_frame_burst must be at least 1".into());
        }
        if self.max_write_buffer_size <= self.write_buffer_size {
            return Err("max_write_buffer_size must exceed write_buffer_size".into());
        }
        Ok(())
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let settings = GatewaySettings::default();
        settings.validate().unwrap();
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<GatewaySettings>(&json).unwrap(), settings);
        let partial: GatewaySettings =
            serde_json::from_str(r#"{"hello_timeout": 0.5, "queue_capacity": 8}"#).unwrap();
        assert_eq!(partial.hello_timeout, Duration::from_millis(500));
        assert_eq!(partial.queue_capacity, 8);
        assert_eq!(partial.heartbeat, settings.heartbeat);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = GatewaySettings { queue_capacity: 0, ..GatewaySettings::default() };
        assert!(bad.validate().unwrap_err().contains("queue_capacity"));
        let bad = GatewaySettings { idle_timeout: Duration::from_secs(1), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("idle_timeout"));
        assert!(serde_json::from_str::<GatewaySettings>(r#"{"heartbeat": -1}"#).is_err());
        let bad = GatewaySettings { max_unidentified: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("max_unidentified"));
        let bad = GatewaySettings { client_frame_rate: f64::NAN, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("client_frame_rate"));
    }

    #[test]
    fn the_connection_limit_leaves_files_for_everything_else() {
        let derived = GatewaySettings::default();
        assert_eq!(derived.connection_limit(20_000), 19_000);
        assert_eq!(derived.connection_limit(1_024), 768);
        assert_eq!(derived.connection_limit(1_048_576), 1_048_576 - 4_096);
        assert_eq!(derived.connection_limit(100), 1, "a tiny limit still admits one");
        let set = GatewaySettings { max_connections: 50_000, ..Default::default() };
        assert_eq!(set.connection_limit(20_000), 50_000, "a setting is taken as given");
    }
}
