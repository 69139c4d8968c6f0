-- Compatibility layers: per app and layer, the layer's settings and the id the layer's clients
-- use for the app (Tencent's numeric SDKAppID); pushes remember which API created them so each
-- layer's rate limits count its own pushes.
ALTER TABLE pushes ADD COLUMN source TEXT NOT NULL DEFAULT 'native';
CREATE INDEX pushes_by_source ON pushes (app_id, source, broadcast, created_at);

CREATE TABLE compat_layers (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    layer TEXT NOT NULL,
    external_id TEXT,
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, layer),
    UNIQUE (layer, external_id)
);
