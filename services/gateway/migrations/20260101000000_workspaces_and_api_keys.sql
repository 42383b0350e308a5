-- The gateway's own database: who may call the API. Contacts and everything else live in the
-- other services' databases, keyed by the workspace id issued here.

CREATE TABLE workspaces (
    id          text PRIMARY KEY,            -- ws_…
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,          -- key_…
    workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The first characters of the key (meisa_sk_ + 8), kept in clear so an operator can tell
    -- keys apart and revoke one without ever seeing the full key again.
    key_prefix    text NOT NULL,
    -- SHA-256 of the whole key. Keys are long random strings, so a fast hash is enough: there is
    -- nothing to brute-force the way there is with a password.
    key_hash      bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE INDEX api_keys_workspace ON api_keys (workspace_id);
CREATE INDEX api_keys_prefix ON api_keys (key_prefix);
