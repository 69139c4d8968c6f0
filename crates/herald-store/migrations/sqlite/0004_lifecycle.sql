-- Push lifecycle: broadcast accounting, dense device ids for unique counting, reports,
-- per-app daily totals and webhooks with a durable outbox.
ALTER TABLE pushes ADD COLUMN broadcast INTEGER NOT NULL DEFAULT 0;
CREATE INDEX pushes_broadcasts ON pushes (app_id, broadcast, created_at);
CREATE INDEX pushes_by_created ON pushes (app_id, created_at);

-- Devices get a dense per-app id, never reused, so reports count unique devices in bitmaps.
ALTER TABLE apps ADD COLUMN next_device_key INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN device_key INTEGER;
CREATE UNIQUE INDEX devices_by_key ON devices (app_id, device_key);

-- One row per push and platform; delivered / opened are serialized bitmaps of device keys.
CREATE TABLE push_reports (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    push_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    targeted INTEGER NOT NULL DEFAULT 0,
    sent_online INTEGER NOT NULL DEFAULT 0,
    stored_offline INTEGER NOT NULL DEFAULT 0,
    vendor_sent INTEGER NOT NULL DEFAULT 0,
    vendor_failed TEXT NOT NULL DEFAULT '{}',
    delivered BLOB,
    opened BLOB,
    PRIMARY KEY (app_id, push_id, platform)
);

-- Deliveries and opens per push per minute, for charts.
CREATE TABLE push_report_minutes (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    push_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    opened INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, push_id, minute)
);

CREATE TABLE app_days (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    pushes INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    opened INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, day)
);

CREATE TABLE webhooks (
    app_id INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
