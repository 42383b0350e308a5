-- Contacts, their change history, the field registry, and the outbox.
-- workspace_id leads every key so the tables can be distributed by workspace (DESIGN §1).

CREATE TABLE contacts (
    workspace_id  text        NOT NULL,
    id            text        NOT NULL,
    email         text        NOT NULL,
    external_id   text,
    first_name    text,
    last_name     text,
    subscribed    boolean     NOT NULL DEFAULT true,
    tags          text[]      NOT NULL DEFAULT '{}',
    custom_fields jsonb       NOT NULL DEFAULT '{}',
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (workspace_id, email);
CREATE UNIQUE INDEX contacts_external_id_key ON contacts (workspace_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX contacts_custom_fields_idx ON contacts USING gin (custom_fields);

-- The type each custom field got the first time a workspace sent it. Never changes afterwards.
CREATE TABLE fields (
    workspace_id  text        NOT NULL,
    name          text        NOT NULL,
    type          text        NOT NULL CHECK (type IN ('string', 'number', 'boolean', 'date')),
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- A contact's history: one row per effective change, erased with the contact.
-- payload is a meisa.events.v1.ContactChanged without the state.
CREATE TABLE contact_changes (
    workspace_id text        NOT NULL,
    contact_id   text        NOT NULL,
    version      bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    payload      bytea       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, contact_id, version)
);

-- Written in the same transaction as the change. The relay gives each row its shard sequence
-- number (contiguous per shard) and publishes it; rows are pruned after the retention window.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    shard        integer     NOT NULL,
    seq          bigint,
    event_id     uuid        NOT NULL,
    workspace_id text        NOT NULL,
    contact_id   text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE UNIQUE INDEX outbox_shard_seq_key ON outbox (shard, seq) WHERE seq IS NOT NULL;
CREATE INDEX outbox_contact_idx ON outbox (workspace_id, contact_id);
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The last sequence number given out per shard; survives pruning of the outbox.
CREATE TABLE relay_shards (
    shard    integer PRIMARY KEY,
    last_seq bigint  NOT NULL
);
