//! Frames a client sends: `hello`, `ack`, `opened`, `ping`.

use serde::{Deserialize, Serialize};

use super::{ProtocolError, MAX_ACK_SEQS, MAX_FIELD_LEN, MAX_VENDOR_TOKEN_LEN, PROTOCOL_VERSION};

/// A frame from client to server.
///
/// # Format
/// ```text
/// {"type":"hello","v":1,"token":"…","device_id":"d1","platform":"ios","package":"com.example",
///  "vendor_token":{"kind":"apns","token":"…"},"last_seq":41}
/// {"type":"ack","up_to":42}            {"type":"ack","seqs":[44,47]}
/// {"type":"opened","push_id":"p-17"}   {"type":"ping"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Identifies the device; must be the first frame of a connection.
    Hello(Hello),
    /// Confirms receipt of pushes by sequence number.
    Ack(Ack),
    /// The user tapped the notification of a push.
    Opened(Opened),
    /// Heartbeat; answered with `pong`. Any frame resets the idle timer, this one exists for
    /// clients that have nothing else to say.
    Ping {},
}

impl ClientFrame {
    /// Decodes and validates one text frame.
    ///
    /// # Errors
    /// [`ProtocolError`] naming what is wrong; the caller answers with an error frame.
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let serde_json::Value::Object(map) = &value else {
            return Err(ProtocolError::Malformed("expected an object".into()));
        };
        let kind: &'static str = match map.get("type") {
            Some(serde_json::Value::String(kind)) => match kind.as_str() {
                "hello" => "hello",
                "ack" => "ack",
                "opened" => "opened",
                "ping" => "ping",
                other => return Err(ProtocolError::UnknownType(other.to_owned())),
            },
            _ => return Err(ProtocolError::MissingType),
        };
        // The version is checked before the shape: another version's hello may well have
        // other members, and the client deserves to hear that the version is the problem.
        if kind == "hello" {
            match map.get("v").and_then(serde_json::Value::as_u64) {
                Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
                Some(v) => return Err(ProtocolError::UnsupportedVersion(v)),
                None => {
                    return Err(ProtocolError::Invalid {
                        kind,
                        detail: "v must be a protocol version number".into(),
                    })
                }
            }
        }
        let frame: ClientFrame = serde_json::from_value(value)
            .map_err(|e| ProtocolError::Invalid { kind, detail: e.to_string() })?;
        frame.validate().map_err(|detail| ProtocolError::Invalid { kind, detail })?;
        Ok(frame)
    }

    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        // Serialising these types cannot fail: every map has string keys and `Value` holds no
        // non-finite floats.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            ClientFrame::Hello(hello) => hello.validate(),
            ClientFrame::Ack(ack) => ack.validate(),
            ClientFrame::Opened(opened) => {
                check_field("push_id", &opened.push_id, MAX_FIELD_LEN, false)
            }
            ClientFrame::Ping {} => Ok(()),
        }
    }
}

/// The first frame of every connection.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the client speaks; this build speaks [`super::PROTOCOL_VERSION`].
    pub v: u32,
    /// Client token minted by the app's back end (see [`crate::token`]).
    pub token: String,
    /// Stable id of this install, chosen by the client. One live connection per device.
    pub device_id: String,
    /// `ios`, `android`, `web`, … (lower case); selects the notification variant.
    pub platform: String,
    /// Package name / bundle id of the app.
    pub package: String,
    /// Token for the vendor channel, so the device is reachable while offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_token: Option<VendorToken>,
    /// Highest app-wide sequence number the client has acked (cumulatively); 0 at first.
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA zone name, e.g. `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl std::fmt::Debug for Hello {
    // The token is a bearer credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("v", &self.v)
            .field("token", &"<redacted>")
            .field("device_id", &self.device_id)
            .field("platform", &self.platform)
            .field("package", &self.package)
            .field("vendor_token", &self.vendor_token.as_ref().map(|t| t.kind))
            .field("last_seq", &self.last_seq)
            .field("app_version", &self.app_version)
            .field("locale", &self.locale)
            .field("time_zone", &self.time_zone)
            .finish()
    }
}

impl Hello {
    fn validate(&self) -> Result<(), String> {
        check_field("token", &self.token, 2_048, false)?;
        check_field("device_id", &self.device_id, MAX_FIELD_LEN, false)?;
        check_field("platform", &self.platform, 32, false)?;
        if !self.platform.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
            return Err("platform must be lower-case ASCII letters, digits, '_' or '-'".into());
        }
        check_field("package", &self.package, MAX_FIELD_LEN * 2, false)?;
        if let Some(vendor) = &self.vendor_token {
            check_field("vendor_token.token", &vendor.token, MAX_VENDOR_TOKEN_LEN, false)?;
        }
        for (name, value) in [
            ("app_version", &self.app_version),
            ("locale", &self.locale),
            ("time_zone", &self.time_zone),
        ] {
            if let Some(value) = value {
                check_field(name, value, MAX_FIELD_LEN, true)?;
            }
        }
        Ok(())
    }
}

/// A device's token for a vendor push channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorToken {
    pub kind: VendorKind,
    pub token: String,
}

/// Which vendor channel a [`VendorToken`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorKind {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging.
    Fcm,
    /// Web Push (RFC 8030) to a browser; the token is the `PushSubscription` JSON the browser
    /// gave the page (`subscription.toJSON()` as a string).
    #[serde(rename = "webpush")]
    WebPush,
}

/// Receipt of pushes. `up_to` acks every push with `seq <= up_to` sent to this device;
/// `seqs` acks single pushes out of order (they count as delivered but do not move the cursor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seqs: Vec<u64>,
}

impl Ack {
    fn validate(&self) -> Result<(), String> {
        if self.up_to.is_none() && self.seqs.is_empty() {
            return Err("an ack needs up_to or seqs".into());
        }
        if self.seqs.len() > MAX_ACK_SEQS {
            return Err(format!("at most {MAX_ACK_SEQS} seqs per ack"));
        }
        if self.up_to == Some(0) || self.seqs.contains(&0) {
            return Err("sequence numbers start at 1".into());
        }
        Ok(())
    }
}

/// The notification of a push was tapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    pub push_id: String,
}

fn check_field(name: &str, value: &str, max: usize, may_be_empty: bool) -> Result<(), String> {
    if value.is_empty() && !may_be_empty {
        return Err(format!("{name} must not be empty"));
    }
    if value.len() > max {
        return Err(format!("{name} is longer than {max} bytes"));
    }
    Ok(())
}
