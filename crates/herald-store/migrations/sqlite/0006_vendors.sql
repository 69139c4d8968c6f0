-- Vendor channels: each app's APNs / FCM credentials, sealed with the server's key (the store
-- never sees them in clear), with a redacted copy for reading back.
CREATE TABLE vendor_credentials (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    vendor TEXT NOT NULL,
    sealed BLOB NOT NULL,
    redacted TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, vendor)
);
CREATE INDEX devices_with_tokens ON devices (app_id, token_kind) WHERE token IS NOT NULL;
