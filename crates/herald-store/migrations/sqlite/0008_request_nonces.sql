-- Nonces of signed requests, for a store shared by several processes (a single node keeps
-- them in memory). A row lives until its request's timestamp leaves the signature window.
CREATE TABLE request_nonces (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
