-- Automations, sequences, and what they did. workspace_id leads every key that a workspace owns
-- so the tables can be distributed by workspace (DESIGN §1).

-- Definitions are stored as the DESIGN §3 JSON and read back with the request parser.
CREATE TABLE sequences (
    workspace_id  text        NOT NULL,
    id            text        NOT NULL,
    definition    jsonb       NOT NULL,
    unseen_fields text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE automations (
    workspace_id     text        NOT NULL,
    id               text        NOT NULL,
    enabled          boolean     NOT NULL,
    definition       jsonb       NOT NULL,
    unseen_fields    text[]      NOT NULL DEFAULT '{}',
    -- condition_met with older_than/within: the consumer keeps projections, the sweep checks them.
    time_dependent   boolean     NOT NULL,
    -- Bumped by every change, so a backfill started for an older definition stops.
    revision         bigint      NOT NULL DEFAULT 1,
    -- Projections for contacts that existed before the automation was enabled: a background
    -- task pages through the contacts service; the cursor survives restarts.
    backfill_pending boolean     NOT NULL DEFAULT false,
    backfill_cursor  text        NOT NULL DEFAULT '',
    backfill_lease   timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX automations_enabled_idx ON automations (workspace_id) WHERE enabled;
CREATE INDEX automations_backfill_idx ON automations (updated_at) WHERE backfill_pending;

-- Every change event whose effects are recorded (or that was given up on: dead = true), written
-- in the same transaction as those effects. Pruned after MEISA_PROCESSED_RETENTION.
CREATE TABLE processed_events (
    event_id            text        PRIMARY KEY,
    shard               integer,
    seq                 bigint,
    depth               integer     NOT NULL DEFAULT 0,
    cause_automation_id text,
    cause_event_id      text,
    dead                boolean     NOT NULL DEFAULT false,
    processed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_at_idx ON processed_events (processed_at);

-- The last stream seq whose event is done, per consumer group and shard: events are applied in
-- seq order, and a jump shows a gap to replay from the contacts service.
CREATE TABLE consumer_shards (
    group_name text    NOT NULL,
    shard      integer NOT NULL,
    last_seq   bigint,
    PRIMARY KEY (group_name, shard)
);

-- Which process reads which shard (one at a time keeps per-contact order and avoids replays).
CREATE TABLE shard_leases (
    group_name  text        NOT NULL,
    shard       integer     NOT NULL,
    owner       text,
    lease_until timestamptz,
    PRIMARY KEY (group_name, shard)
);

-- Live consumers, for spreading shards evenly across replicas.
CREATE TABLE consumers (
    group_name   text        NOT NULL,
    name         text        NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    PRIMARY KEY (group_name, name)
);

-- Entries given up on after MEISA_CONSUMER_MAX_DELIVERIES, and seqs the contacts service could
-- no longer replay.
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    group_name  text        NOT NULL,
    shard       integer     NOT NULL,
    seq         bigint,
    stream_id   text,
    event_id    text,
    payload     bytea,
    deliveries  integer     NOT NULL DEFAULT 0,
    error       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (automation, triggering event): an automation fires at most once per event.
CREATE TABLE firings (
    workspace_id  text        NOT NULL,
    automation_id text        NOT NULL,
    event_id      text        NOT NULL,
    contact_id    text        NOT NULL,
    fired_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, automation_id, event_id)
);
CREATE INDEX firings_contact_idx ON firings (workspace_id, contact_id);

-- The last firing per (automation, contact), for reentry.
CREATE TABLE reentry (
    workspace_id  text        NOT NULL,
    automation_id text        NOT NULL,
    contact_id    text        NOT NULL,
    last_fired_at timestamptz,
    PRIMARY KEY (workspace_id, automation_id, contact_id)
);
CREATE INDEX reentry_contact_idx ON reentry (workspace_id, contact_id);

-- Each action of each firing. Remote actions (tags, email) are run by workers; enroll and exit
-- are done in the firing's transaction and recorded here as done.
CREATE TABLE action_jobs (
    workspace_id  text        NOT NULL,
    id            text        NOT NULL,
    automation_id text        NOT NULL,
    event_id      text        NOT NULL,
    action_index  integer     NOT NULL,
    contact_id    text,
    action        jsonb       NOT NULL,
    -- Causation depth of the changes this action makes.
    depth         integer     NOT NULL,
    status        text        NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts      integer     NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL,
    lease_until   timestamptz,
    last_error    text        NOT NULL DEFAULT '',
    -- W3C trace context of the change that fired it, so the call it makes joins that trace.
    traceparent   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, automation_id, event_id, action_index)
);
CREATE INDEX action_jobs_due_idx ON action_jobs (run_at) WHERE status IN ('pending', 'running');
CREATE INDEX action_jobs_contact_idx ON action_jobs (workspace_id, contact_id)
    WHERE status IN ('pending', 'running');
CREATE INDEX action_jobs_automation_idx ON action_jobs (workspace_id, automation_id)
    WHERE status IN ('pending', 'running');

CREATE TABLE enrollments (
    workspace_id  text        NOT NULL,
    id            text        NOT NULL,
    sequence_id   text        NOT NULL,
    -- NULL once the contact was erased.
    contact_id    text,
    automation_id text,
    event_id      text,
    status        text        NOT NULL CHECK (status IN ('active', 'completed', 'exited')),
    current_step  integer     NOT NULL DEFAULT 0,
    next_run_at   timestamptz,
    lease_until   timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    exit_reason   text        NOT NULL DEFAULT '',
    traceparent   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    PRIMARY KEY (workspace_id, id)
);
-- One active enrollment per (sequence, contact): enrolling again while active does nothing.
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (workspace_id, sequence_id, contact_id)
    WHERE status = 'active';
CREATE INDEX enrollments_due_idx ON enrollments (next_run_at) WHERE status = 'active';
CREATE INDEX enrollments_contact_idx ON enrollments (workspace_id, contact_id, id);
CREATE INDEX enrollments_sequence_idx ON enrollments (workspace_id, sequence_id, id);

-- For each time-dependent condition_met automation and each contact of its workspace: what the
-- condition reads, its value when last looked at, and when time alone will next change it (NULL:
-- never). The sweep reads only rows that are due, through the partial index, so its cost follows
-- the contacts that can flip, not the table.
CREATE TABLE projections (
    workspace_id  text        NOT NULL,
    automation_id text        NOT NULL,
    contact_id    text        NOT NULL,
    state         jsonb       NOT NULL,
    version       bigint      NOT NULL,
    last_value    boolean     NOT NULL,
    next_check_at timestamptz,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, automation_id, contact_id)
);
CREATE INDEX projections_due_idx ON projections (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX projections_contact_idx ON projections (workspace_id, contact_id);

-- What automations did, per contact, newest first; stats count it. On erasure contact_id is set
-- to NULL: counts stay, the history no longer names anyone.
CREATE TABLE activity (
    id            bigserial   PRIMARY KEY,
    workspace_id  text        NOT NULL,
    contact_id    text,
    kind          text        NOT NULL,
    automation_id text,
    sequence_id   text,
    enrollment_id text,
    event_id      text,
    action_index  integer,
    action_type   text,
    step_index    integer,
    step_type     text,
    message_id    text,
    emailed       boolean     NOT NULL DEFAULT false,
    detail        text        NOT NULL DEFAULT '',
    occurred_at   timestamptz NOT NULL
);
CREATE INDEX activity_contact_idx ON activity (workspace_id, contact_id, id);
CREATE INDEX activity_automation_idx ON activity (workspace_id, automation_id, kind)
    WHERE automation_id IS NOT NULL;
CREATE INDEX activity_sequence_idx ON activity (workspace_id, sequence_id, kind)
    WHERE sequence_id IS NOT NULL;
