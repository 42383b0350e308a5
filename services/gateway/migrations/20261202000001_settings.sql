-- What the dashboard's settings page shows and edits.

-- Who made a key (the dashboard user's email; NULL for keys made by `gateway admin`) and when it
-- was last used. last_used_at is written at most once a minute per key, by the lookup itself, so
-- the hot path does not gain a write per request.
ALTER TABLE api_keys ADD COLUMN created_by text, ADD COLUMN last_used_at timestamptz;

-- Sender defaults: what a new template's From and Reply-to start as.
CREATE TABLE workspace_settings (
    workspace_id      text PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    default_from      text NOT NULL DEFAULT '',
    default_reply_to  text NOT NULL DEFAULT '',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
