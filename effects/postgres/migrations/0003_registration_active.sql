-- The active-node listing (Store.ListActive), which the Consul reconciler
-- pages through by entity id: only active rows, in key order per domain.
-- {{schema}} is replaced by the quoted schema name.

CREATE INDEX registration_projections_active
    ON {{schema}}.registration_projections (domain, entity_id)
    WHERE current_state = 'active';
