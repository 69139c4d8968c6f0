//! Settings in layers: defaults, then a TOML file, then `HERALD_*` environment variables, then
//! command-line flags. Every field is documented in `herald.example.toml` at the repository root.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use herald_core::redact::{url_without_password, REDACTED};
use herald_gateway::GatewaySettings;
use herald_service::webhooks::WebhookSettings;
use herald_store::{PgOptions, PgTls};
use herald_vendor::VendorSettings;
use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything the server can be told at start-up.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTP server (API, WebSocket, metrics).
    pub listen: SocketAddr,
    /// Directory holding the SQLite database and the generated admin token.
    pub data_dir: PathBuf,
    /// Where herald keeps its state: `sqlite` (the embedded database in `data_dir`) or a
    /// `postgres://` URL.
    pub store: String,
    /// Most connections to PostgreSQL open at once.
    pub postgres_pool_size: u32,
    /// Longest a PostgreSQL statement may run before the server cancels it, in seconds.
    pub postgres_statement_timeout_secs: u64,
    /// TLS mode, as libpq's `sslmode` (disable, prefer, require, verify-ca, verify-full);
    /// unset: the URL's `sslmode`, else `prefer`.
    pub postgres_tls: Option<String>,
    /// Schema holding herald's tables, created if missing.
    pub postgres_schema: String,
    /// Bearer token of the admin API. When unset, one is generated on first start and kept in
    /// `<data_dir>/admin-token`.
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get `413 body_too_large`.
    pub max_body_bytes: usize,
    /// Largest body of a bulk import (`POST /v1/accounts/bulk`), in bytes: a migration sends
    /// its file in calls this large, so that each call keeps the store busy for longer than
    /// the call takes to arrive.
    pub max_import_body_bytes: usize,
    /// How far a signed request's timestamp may be from the server's clock, in seconds. Nonces
    /// are remembered for as long, so a replay inside the window is refused.
    pub signature_window_secs: u64,
    /// How long the previous app secret keeps working after a rotation, unless the rotate call
    /// names its own grace period.
    pub secret_grace_secs: u64,
    /// How long each shutdown step (in-flight requests, client connections, background tasks,
    /// the last receipts write) may take before shutdown goes on anyway.
    pub shutdown_timeout_secs: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `herald_server=debug,info`.
    pub log_level: String,
    /// `true`: every SQLite commit is fsynced (survives power loss). `false`: faster, survives a
    /// process crash but not a power cut.
    pub sqlite_sync_full: bool,
    /// Most bytes of stored pushes' content (message, notification, sender; counted as JSON)
    /// kept in memory for devices that reconnect; older contents are read back from the store.
    pub inbox_cache_bytes: usize,
    /// Client connections: queue sizes, timeouts, WebSocket buffers (the `[gateway]` table of
    /// the file; no environment variables).
    pub gateway: GatewaySettings,
    /// APNs / FCM: endpoints, limits, retries and the key sealing credentials (the `[vendor]`
    /// table; the key also as `HERALD_VENDOR_CREDENTIALS_KEY`).
    pub vendor: VendorSettings,
    /// Webhook retries: first and longest wait, when an event is given up, post timeout (the
    /// `[webhooks]` table; no environment variables).
    pub webhooks: WebhookSettings,
    /// Several nodes on one PostgreSQL store with NATS JetStream between them (the
    /// `[cluster]` table; also `HERALD_CLUSTER_NATS`, `HERALD_CLUSTER_NODE_ID`,
    /// `HERALD_CLUSTER_PREFIX`). Absent: one node on its own.
    pub cluster: Option<ClusterSettings>,
}

impl std::fmt::Debug for Settings {
    // The admin token and the store's password stay out of logs and errors. Destructured
    // whole, so that a new field needs a decision here.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Settings {
            listen,
            data_dir,
            store,
            postgres_pool_size,
            postgres_statement_timeout_secs,
            postgres_tls,
            postgres_schema,
            admin_token,
            max_body_bytes,
            max_import_body_bytes,
            signature_window_secs,
            secret_grace_secs,
            shutdown_timeout_secs,
            log_format,
            log_level,
            sqlite_sync_full,
            inbox_cache_bytes,
            gateway,
            vendor,
            webhooks,
            cluster,
        } = self;
        f.debug_struct("Settings")
            .field("listen", listen)
            .field("data_dir", data_dir)
            .field("store", &url_without_password(store))
            .field("postgres_pool_size", postgres_pool_size)
            .field("postgres_statement_timeout_secs", postgres_statement_timeout_secs)
            .field("postgres_tls", postgres_tls)
            .field("postgres_schema", postgres_schema)
            .field("admin_token", &admin_token.as_ref().map(|_| REDACTED))
            .field("max_body_bytes", max_body_bytes)
            .field("max_import_body_bytes", max_import_body_bytes)
            .field("signature_window_secs", signature_window_secs)
            .field("secret_grace_secs", secret_grace_secs)
            .field("shutdown_timeout_secs", shutdown_timeout_secs)
            .field("log_format", log_format)
            .field("log_level", log_level)
            .field("sqlite_sync_full", sqlite_sync_full)
            .field("inbox_cache_bytes", inbox_cache_bytes)
            .field("gateway", gateway)
            .field("vendor", vendor)
            .field("webhooks", webhooks)
            .field("cluster", cluster)
            .finish()
    }
}

/// The `[cluster]` table.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `nats://host:port` of the NATS server (JetStream enabled).
    pub nats: String,
    /// This node's name in the cluster; unset: generated on first start and kept in
    /// `<data_dir>/node-id`.
    pub node_id: Option<String>,
    /// Stream and subject names start with it: clusters sharing one NATS server use different
    /// prefixes.
    pub prefix: String,
}

impl std::fmt::Debug for ClusterSettings {
    // A NATS URL may carry a user's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("nats", &url_without_password(&self.nats))
            .field("node_id", &self.node_id)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self { nats: "nats://127.0.0.1:4222".into(), node_id: None, prefix: "herald".into() }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("herald-data"),
            store: "sqlite".into(),
            postgres_pool_size: 16,
            postgres_statement_timeout_secs: 30,
            postgres_tls: None,
            postgres_schema: "public".into(),
            admin_token: None,
            max_body_bytes: 1024 * 1024,
            max_import_body_bytes: 64 * 1024 * 1024,
            signature_window_secs: 300,
            secret_grace_secs: 86_400,
            shutdown_timeout_secs: 30,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            sqlite_sync_full: true,
            inbox_cache_bytes: 256 * 1024 * 1024,
            gateway: GatewaySettings::default(),
            vendor: VendorSettings::default(),
            webhooks: WebhookSettings::default(),
            cluster: None,
        }
    }
}

/// Settings that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    File { path: PathBuf, source: toml::de::Error },
    #[error("invalid settings (from file and HERALD_* environment): {0}")]
    Merged(toml::de::Error),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{} invalid settings: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// Each problem on its own.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Several(all) => all.iter().map(ToString::to_string).collect(),
            one => vec![one.to_string()],
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub store: Option<String>,
}

/// The store the settings name.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChoice {
    /// The embedded SQLite database in `data_dir`.
    Sqlite,
    Postgres(PgOptions),
}

/// Names of the `[cluster]` table accepted as `HERALD_CLUSTER_<NAME>` variables.
const CLUSTER_KEYS: [&str; 3] = ["nats", "node_id", "prefix"];

/// Names accepted in the file and as `HERALD_<NAME>` variables.
const KEYS: [&str; 17] = [
    "listen",
    "data_dir",
    "store",
    "postgres_pool_size",
    "postgres_statement_timeout_secs",
    "postgres_tls",
    "postgres_schema",
    "admin_token",
    "max_body_bytes",
    "max_import_body_bytes",
    "signature_window_secs",
    "secret_grace_secs",
    "shutdown_timeout_secs",
    "log_format",
    "log_level",
    "sqlite_sync_full",
    "inbox_cache_bytes",
];

impl Settings {
    /// Builds the settings from an optional file, the given environment and the flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Self, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.into(), source })?;
                Self::load_text(path, &text, env, overrides)
            }
            None => Self::merge(toml::Table::new(), env, overrides),
        }
    }

    /// Builds the settings from the text of the file at `path` (named in errors), the given
    /// environment and the flags: [`Settings::load`] after reading the file.
    pub fn load_text(
        path: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Self, ConfigError> {
        Self::merge(parse_file(path, text)?, env, overrides)
    }

    fn merge(
        mut table: toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in KEYS {
            if let Some(value) = env.get(&format!("HERALD_{}", key.to_ascii_uppercase())) {
                table.insert(key.into(), env_value(value));
            }
        }
        // The one nested setting a deployment wants out of files: it is a secret.
        if let Some(key) = env.get("HERALD_VENDOR_CREDENTIALS_KEY") {
            let vendor =
                table.entry("vendor").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(vendor) = vendor {
                vendor.insert("credentials_key".into(), toml::Value::String(key.clone()));
            }
        }
        for key in CLUSTER_KEYS {
            if let Some(value) = env.get(&format!("HERALD_CLUSTER_{}", key.to_ascii_uppercase())) {
                let cluster = table
                    .entry("cluster")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(cluster) = cluster {
                    cluster.insert(key.into(), toml::Value::String(value.clone()));
                }
            }
        }
        let mut settings: Settings =
            toml::Value::Table(table).try_into().map_err(ConfigError::Merged)?;
        if let Some(dir) = overrides.data_dir {
            settings.data_dir = dir;
        }
        if let Some(listen) = overrides.listen {
            settings.listen = listen;
        }
        if let Some(store) = overrides.store {
            settings.store = store;
        }
        settings.validate()
    }

    /// The store to open, with its connection settings.
    pub fn store_choice(&self) -> Result<StoreChoice, ConfigError> {
        let invalid = |name, reason: String| ConfigError::Invalid { name, reason };
        let url = self.store.trim();
        if url.is_empty() || url == "sqlite" {
            return Ok(StoreChoice::Sqlite);
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let reason = "must be \"sqlite\" or a postgres:// URL".to_owned();
            return Err(invalid("store", reason));
        }
        let tls = self.postgres_tls.as_deref().map(PgTls::from_str).transpose();
        let tls = tls.map_err(|reason| invalid("postgres_tls", reason))?;
        if self.postgres_schema.is_empty() {
            return Err(invalid("postgres_schema", "must not be empty".into()));
        }
        if self.postgres_pool_size == 0 {
            return Err(invalid("postgres_pool_size", "must be positive".into()));
        }
        Ok(StoreChoice::Postgres(PgOptions {
            schema: self.postgres_schema.clone(),
            pool_size: self.postgres_pool_size,
            statement_timeout: Duration::from_secs(self.postgres_statement_timeout_secs.max(1)),
            tls,
            ..PgOptions::new(url)
        }))
    }

    fn validate(self) -> Result<Self, ConfigError> {
        let mut problems = self.problems();
        match problems.len() {
            0 => Ok(self),
            1 => Err(problems.remove(0)),
            _ => Err(ConfigError::Several(problems)),
        }
    }

    /// Every problem of the settings, not only the first: `herald checkconfig` lists them all.
    fn problems(&self) -> Vec<ConfigError> {
        let invalid = |name, reason: &str| ConfigError::Invalid { name, reason: reason.into() };
        let mut problems = Vec::new();
        if self.max_body_bytes == 0 {
            problems.push(invalid("max_body_bytes", "must be positive"));
        }
        if self.max_import_body_bytes == 0 {
            problems.push(invalid("max_import_body_bytes", "must be positive"));
        }
        if self.signature_window_secs == 0 {
            problems.push(invalid("signature_window_secs", "must be positive"));
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            problems.push(invalid("admin_token", "must be at least 16 characters"));
        }
        match self.store_choice() {
            Ok(store) => problems.extend(self.cluster_problems(&store)),
            Err(err) => problems.push(err),
        }
        if let Err(reason) = self.gateway.validate() {
            problems.push(invalid("gateway", &reason));
        }
        if let Err(err) = self.vendor.validate() {
            problems.push(invalid("vendor", &err.to_string()));
        }
        if let Err(reason) = self.webhooks.validate() {
            problems.push(invalid("webhooks", &reason));
        }
        problems
    }

    fn cluster_problems(&self, store: &StoreChoice) -> Vec<ConfigError> {
        let invalid = |name, reason: &str| ConfigError::Invalid { name, reason: reason.into() };
        let Some(cluster) = &self.cluster else { return Vec::new() };
        let mut problems = Vec::new();
        if *store == StoreChoice::Sqlite {
            problems.push(invalid(
                "cluster",
                "cluster mode needs the PostgreSQL store (store = \"postgres://...\"): \
                 every node must see the same state, and SQLite is one process's file",
            ));
        }
        if !(cluster.nats.starts_with("nats://") || cluster.nats.starts_with("tls://")) {
            problems.push(invalid("cluster.nats", "must be a nats:// URL"));
        }
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&cluster.prefix) {
            problems.push(invalid("cluster.prefix", "letters, digits, '-' and '_', 1 to 64"));
        }
        if cluster.node_id.as_deref().is_some_and(|id| !name_ok(id)) {
            problems.push(invalid("cluster.node_id", "letters, digits, '-' and '_', 1 to 64"));
        }
        // Generated per data directory on a single node; every node must share them.
        if self.admin_token.is_none() {
            problems
                .push(invalid("admin_token", "cluster mode needs it set, the same on every node"));
        }
        if self.vendor.credentials_key.is_none() {
            problems.push(invalid(
                "vendor.credentials_key",
                "cluster mode needs it set, the same on every node",
            ));
        }
        problems
    }
}

fn parse_file(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    // Parse as `Settings` first so that a typo in the file is reported against the file.
    toml::from_str::<Settings>(text)
        .map_err(|source| ConfigError::File { path: path.into(), source: source.clone() })?;
    toml::from_str(text).map_err(|source| ConfigError::File { path: path.into(), source })
}

/// Environment values are strings; numbers and booleans are given their TOML type so that
/// `HERALD_MAX_BODY_BYTES=2048` means the number.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn debug_output_hides_tokens_passwords_and_keys() {
        let vars = env(&[
            ("HERALD_ADMIN_TOKEN", "admin-token-never-shown"),
            ("HERALD_STORE", "postgres://herald:db-password-never-shown@db/herald"),
            ("HERALD_VENDOR_CREDENTIALS_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ("HERALD_CLUSTER_NATS", "nats://herald:nats-password-never-shown@nats:4222"),
        ]);
        let settings = Settings::load(None, vars, Overrides::default()).unwrap();
        let shown = format!("{settings:?}");
        assert!(shown.contains("postgres://herald@db/herald") && shown.contains("nats:4222"));
        assert!(!shown.contains("never-shown") && !shown.contains("AAAAAAAA"), "{shown}");
    }

    #[test]
    fn defaults_without_anything() {
        let settings = Settings::load(None, env(&[]), Overrides::default()).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/file\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let vars = env(&[("HERALD_LISTEN", "127.0.0.1:2"), ("HERALD_DATA_DIR", "/env")]);
        let flags = Overrides { data_dir: Some("/flag".into()), ..Overrides::default() };
        let settings = Settings::load(Some(&file), vars, flags).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:2");
        assert_eq!(settings.data_dir, PathBuf::from("/flag"));
        assert_eq!(settings.max_body_bytes, 10);
    }

    #[test]
    fn store_is_sqlite_unless_a_postgres_url_is_given() {
        let sqlite = Settings::load(None, env(&[]), Overrides::default()).unwrap();
        assert_eq!(sqlite.store_choice().unwrap(), StoreChoice::Sqlite);
        let vars = env(&[
            ("HERALD_STORE", "postgres://herald@db:5432/herald"),
            ("HERALD_POSTGRES_TLS", "verify-full"),
            ("HERALD_POSTGRES_POOL_SIZE", "4"),
        ]);
        let pg = Settings::load(None, vars, Overrides::default()).unwrap();
        let StoreChoice::Postgres(options) = pg.store_choice().unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(options.url, "postgres://herald@db:5432/herald");
        assert_eq!((options.pool_size, options.tls), (4, Some(PgTls::VerifyFull)));
        let flag = Overrides { store: Some("postgresql://x@y/z".into()), ..Overrides::default() };
        let flagged = Settings::load(None, env(&[("HERALD_STORE", "sqlite")]), flag).unwrap();
        assert!(matches!(flagged.store_choice().unwrap(), StoreChoice::Postgres(_)));
    }

    #[test]
    fn bad_store_settings_are_named() {
        for (vars, name) in [
            (vec![("HERALD_STORE", "mysql://x")], "store"),
            (
                vec![("HERALD_STORE", "postgres://x/y"), ("HERALD_POSTGRES_TLS", "sometimes")],
                "postgres_tls",
            ),
            (
                vec![("HERALD_STORE", "postgres://x/y"), ("HERALD_POSTGRES_POOL_SIZE", "0")],
                "postgres_pool_size",
            ),
        ] {
            let err = Settings::load(None, env(&vars), Overrides::default()).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: n, .. } if n == name), "{err}");
        }
    }

    #[test]
    fn cluster_mode_needs_postgres_and_takes_env() {
        let err = Settings::load(
            None,
            env(&[("HERALD_CLUSTER_NATS", "nats://n:4222")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cluster mode needs the PostgreSQL store"), "{err}");
        let mut vars = vec![
            ("HERALD_STORE", "postgres://x@y/z"),
            ("HERALD_CLUSTER_NATS", "nats://n:4222"),
            ("HERALD_CLUSTER_PREFIX", "prod-eu"),
        ];
        let err = Settings::load(None, env(&vars), Overrides::default()).unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("admin_token"), "{problems:?}");
        assert!(problems[1].contains("vendor.credentials_key"), "{problems:?}");
        vars.push(("HERALD_ADMIN_TOKEN", "0123456789abcdef0123"));
        let err = Settings::load(None, env(&vars), Overrides::default()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { name: "vendor.credentials_key", .. }),
            "{err}"
        );
        vars.push((
            "HERALD_VENDOR_CREDENTIALS_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        let vars = env(&vars);
        let settings = Settings::load(None, vars, Overrides::default()).unwrap();
        let cluster = settings.cluster.unwrap();
        assert_eq!((cluster.nats.as_str(), cluster.prefix.as_str()), ("nats://n:4222", "prod-eu"));
        assert_eq!(cluster.node_id, None);
        let vars = env(&[
            ("HERALD_STORE", "postgres://x@y/z"),
            ("HERALD_CLUSTER_PREFIX", "a.b"),
            ("HERALD_ADMIN_TOKEN", "0123456789abcdef0123"),
            ("HERALD_VENDOR_CREDENTIALS_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ]);
        let err = Settings::load(None, vars, Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "cluster.prefix", .. }), "{err}");
    }

    #[test]
    fn typo_in_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Settings::load(Some(&file), env(&[]), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("unknown field `lisen`"), "{err}");
    }

    #[test]
    fn every_problem_is_listed_not_only_the_first() {
        let file_text = "max_body_bytes = 0\nsignature_window_secs = 0\nadmin_token = \"short\"\n\
                         store = \"mysql://db\"\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, file_text).unwrap();
        let err = Settings::load(Some(&file), env(&[]), Overrides::default()).unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for name in ["max_body_bytes", "signature_window_secs", "admin_token", "store"] {
            assert!(problems.iter().any(|p| p.contains(name)), "{name} missing: {problems:?}");
        }
    }

    #[test]
    fn bad_env_value_is_reported() {
        let err = Settings::load(None, env(&[("HERALD_LISTEN", "nowhere")]), Overrides::default())
            .unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }

    #[test]
    fn example_config_is_valid_and_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../herald.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example = toml::from_str::<Settings>(&text).unwrap();
        assert_eq!(example.gateway, GatewaySettings::default(), "the example shows the defaults");
        assert_eq!(example.webhooks, WebhookSettings::default(), "the example shows the defaults");
        for key in KEYS {
            assert!(text.contains(&format!("{key} =")), "{key} is not documented in the example");
        }
        for key in CLUSTER_KEYS {
            assert!(text.contains(&format!("{key} =")), "cluster.{key} is not documented");
        }
    }
}
