-- Accounts of an app with their dense u32 id, tags and attribute values. Ids are never reused:
-- a stored push's audience bitmap must not come to include an account created after it.
ALTER TABLE apps ADD COLUMN next_account_id INTEGER NOT NULL DEFAULT 0;

CREATE TABLE accounts (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id INTEGER NOT NULL,
    account TEXT NOT NULL,
    -- Tags joined by '\n' (tags never hold control characters): one row per account keeps the
    -- start-up index rebuild to one sequential scan.
    tags TEXT NOT NULL DEFAULT '',
    attr0 TEXT, attr1 TEXT, attr2 TEXT, attr3 TEXT, attr4 TEXT,
    attr5 TEXT, attr6 TEXT, attr7 TEXT, attr8 TEXT, attr9 TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, account)
) WITHOUT ROWID;

CREATE TABLE attribute_names (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    slot INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (app_id, slot),
    UNIQUE (app_id, name)
);

CREATE TABLE devices (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    platform TEXT NOT NULL,
    package TEXT NOT NULL,
    token_kind TEXT,
    token TEXT,
    app_version TEXT,
    locale TEXT,
    time_zone TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, device_id)
);
CREATE INDEX devices_by_account ON devices (app_id, account_id);
