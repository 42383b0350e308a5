-- The change-stream consumer (DESIGN §4), which erases a deleted contact's data.

-- The last seq handled on each shard's stream (`{prefix}:changes:{shard}`), written in the same
-- transaction as the erasures it covers: a redelivered entry at or below it is skipped, and an
-- entry above it + 1 reveals a gap (Redis lost entries), replayed from the contacts service.
CREATE TABLE stream_positions (
    stream text PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Entries given up on: undecodable, delivered too often without being applied, a deletion
-- without a contact, or seqs that neither the stream nor ReplayChanges could provide. Each is
-- logged at error level too; an operator reads them here (payload as read, when there was one).
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    stream text NOT NULL,
    seq bigint,
    -- The last seq of a lost range (seq ..= seq_to); NULL for a single entry.
    seq_to bigint,
    stream_id text,
    event_id text,
    payload bytea,
    deliveries integer NOT NULL DEFAULT 0,
    error text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
