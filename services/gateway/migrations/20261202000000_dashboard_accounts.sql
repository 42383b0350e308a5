-- Dashboard accounts (DESIGN §6): the people of a workspace who sign in to the dashboard, their
-- sessions, the invitations that bring a teammate in, and the failed sign-ins that throttle
-- password guessing. API keys (the previous migration) are for programs; these are for people.

-- One account per email address across the gateway: signing in with an email and a password
-- names the workspace without asking for it.
CREATE TABLE dashboard_users (
    id             text PRIMARY KEY,                      -- usr_…
    workspace_id   text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Lowercased on the way in, so Jane@Example.com and jane@example.com are one account.
    email          text NOT NULL UNIQUE,
    -- The PHC string of an Argon2id hash: algorithm, parameters and salt travel with it, so the
    -- parameters can be raised later without a migration.
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dashboard_users_workspace ON dashboard_users (workspace_id);

-- A session is a random token in an HttpOnly cookie; only its SHA-256 is kept, so a copy of this
-- table signs nobody in. Each session has its own CSRF token, which every form carries.
CREATE TABLE dashboard_sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      text NOT NULL REFERENCES dashboard_users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id);

-- An invitation is a link with a random token (again only its hash is kept); whoever opens it
-- before it expires chooses a password and becomes a user of the workspace.
CREATE TABLE dashboard_invites (
    token_hash    bytea PRIMARY KEY,
    workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email         text NOT NULL,
    invited_by    text REFERENCES dashboard_users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz
);

CREATE INDEX dashboard_invites_workspace ON dashboard_invites (workspace_id);

-- Failed sign-ins, one row each, keyed by what they are counted against ("account:jane@…",
-- "address:203.0.113.7"). Kept in the database rather than in the process so every gateway
-- replica counts the same attempts; rows older than the window are deleted as new ones come in.
CREATE TABLE sign_in_failures (
    key  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sign_in_failures_key_at ON sign_in_failures (key, at);
