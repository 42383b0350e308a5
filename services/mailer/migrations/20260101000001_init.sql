-- The mailer's own database: templates, messages (with their delivery queue), the suppression
-- list and token unsubscribes. workspace_id leads every key (DESIGN §1: Citus distributes on it).

CREATE TABLE templates (
    workspace_id text NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    subject text NOT NULL,
    html text NOT NULL,
    text_body text,
    from_addr text NOT NULL,
    reply_to text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE messages (
    workspace_id text NOT NULL,
    id uuid NOT NULL,
    idempotency_key text NOT NULL,
    contact_id text NOT NULL,
    to_email text NOT NULL,
    template_id uuid,
    source_automation_id text NOT NULL DEFAULT '',
    source_sequence_id text NOT NULL DEFAULT '',
    source_step integer,
    source_enrollment_id text NOT NULL DEFAULT '',
    source_event_id text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'skipped')),
    reason text NOT NULL DEFAULT '',
    subject text NOT NULL DEFAULT '',
    html_body text NOT NULL DEFAULT '',
    text_body text NOT NULL DEFAULT '',
    from_addr text NOT NULL DEFAULT '',
    reply_to text,
    message_id_header text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (workspace_id, id),
    -- SendEmail's idempotency: one message per key, whatever the concurrency.
    UNIQUE (workspace_id, idempotency_key)
);
-- Unsubscribe tokens name the message alone.
CREATE UNIQUE INDEX messages_by_id ON messages (id);
CREATE INDEX messages_by_contact ON messages (workspace_id, contact_id, id DESC);

-- Messages waiting for delivery. A row exists from queueing until the message is sent or has
-- failed for good. Workers claim rows with FOR UPDATE SKIP LOCKED and hold them under a lease
-- (claimed_until): a worker that dies loses its claims when the lease runs out.
CREATE TABLE delivery_queue (
    message_id uuid PRIMARY KEY,
    workspace_id text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    claimed_by uuid
);
CREATE INDEX delivery_queue_due ON delivery_queue (next_attempt_at);

CREATE TABLE suppressions (
    workspace_id text NOT NULL,
    email text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, email)
);

-- Unsubscribes through a token. Sends to the contact are suppressed from the moment the row
-- exists; contact_version is the contact's version once contacts has recorded subscribed=false
-- (NULL until then; a background loop retries), so that a later resubscription (a newer
-- snapshot with subscribed=true) lifts it.
CREATE TABLE unsubscribes (
    workspace_id text NOT NULL,
    contact_id text NOT NULL,
    message_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    contact_version bigint,
    synced_at timestamptz,
    sync_attempts integer NOT NULL DEFAULT 0,
    last_sync_error text NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, contact_id)
);
CREATE INDEX unsubscribes_pending ON unsubscribes (created_at) WHERE synced_at IS NULL;
