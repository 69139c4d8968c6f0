-- Pushes: one row per push, never one per recipient. `recipients` is the serialized Roaring
-- bitmap of the audience at dispatch time; a device's inbox is the pushes after its cursor
-- whose bitmap holds its account.
ALTER TABLE apps ADD COLUMN next_push_seq INTEGER NOT NULL DEFAULT 1;

CREATE TABLE pushes (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    seq INTEGER,
    status TEXT NOT NULL,
    audience TEXT NOT NULL,
    message TEXT NOT NULL,
    notification TEXT,
    sender TEXT,
    platforms TEXT,
    ttl_secs INTEGER NOT NULL,
    idempotency_key TEXT,
    push_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    expires_at INTEGER,
    recalled_at INTEGER,
    recipients BLOB,
    targeted INTEGER,
    error TEXT,
    PRIMARY KEY (app_id, id)
);
CREATE UNIQUE INDEX pushes_by_seq ON pushes (app_id, seq) WHERE seq IS NOT NULL;
CREATE UNIQUE INDEX pushes_by_idempotency_key ON pushes (app_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX pushes_by_status ON pushes (status, push_at);

-- Per device: the highest seq acked cumulatively, and seqs above it acked one by one.
CREATE TABLE device_cursors (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    acked_above TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (app_id, device_id)
);
