-- Nonces of signed requests, shared by every node of a cluster: a request replayed to another
-- node is refused too. A row lives until its request's timestamp leaves the signature window.
CREATE TABLE request_nonces (
    app_id BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
