-- The registration projection: one row per node and domain, written by the
-- postgres.upsert_registration and postgres.update_registration effects and
-- read by the store. {{schema}} is replaced by the quoted schema name.

CREATE TYPE {{schema}}.registration_state AS ENUM (
    'pending_registration',
    'accepted',
    'awaiting_ack',
    'rejected',
    'ack_timed_out',
    'ack_received',
    'active',
    'liveness_expired'
);

CREATE TABLE {{schema}}.registration_projections (
    entity_id                   uuid NOT NULL,
    domain                      text NOT NULL DEFAULT 'registration',
    current_state               {{schema}}.registration_state NOT NULL,
    node_type                   text NOT NULL,
    node_version                text NOT NULL DEFAULT '1.0.0',
    capabilities                jsonb NOT NULL DEFAULT '{}',
    endpoints                   jsonb NOT NULL DEFAULT '{}',
    ack_deadline                timestamptz,
    liveness_deadline           timestamptz,
    last_heartbeat_at           timestamptz,
    ack_timeout_emitted_at      timestamptz,
    liveness_timeout_emitted_at timestamptz,
    last_applied_event_id       uuid,
    registered_at               timestamptz,
    updated_at                  timestamptz,
    correlation_id              uuid,
    generation                  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_id, domain)
);

-- The overdue-ack scan: only rows that can still time out waiting for an ack.
CREATE INDEX registration_projections_ack_overdue
    ON {{schema}}.registration_projections (ack_deadline)
    WHERE ack_timeout_emitted_at IS NULL AND current_state IN ('awaiting_ack', 'accepted');

-- The overdue-liveness scan: only active rows whose expiry was not emitted.
CREATE INDEX registration_projections_liveness_overdue
    ON {{schema}}.registration_projections (liveness_deadline)
    WHERE liveness_timeout_emitted_at IS NULL AND current_state = 'active';
