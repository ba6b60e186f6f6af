-- The outbox: the work of an applied decision (its events, and its intents
-- on systems other than this store), written in the same transaction as the
-- projection row and removed once the relay executed and published it.
-- {{schema}} is replaced by the quoted schema name.

CREATE TABLE {{schema}}.registration_outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id  uuid NOT NULL,
    domain     text NOT NULL,
    -- clock_timestamp(), not now(): the time of the append, not of the
    -- start of a transaction that may have waited on a row lock.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    record     json NOT NULL -- json, not jsonb: kept byte for byte
);

-- The relay reads one entity's records in order.
CREATE INDEX registration_outbox_entity ON {{schema}}.registration_outbox (entity_id, seq);
