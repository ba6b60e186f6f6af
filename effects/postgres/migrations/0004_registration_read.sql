-- The read API (Store.List, registration.Reader): one index per filter, so
-- that no query shape reads the table sequentially. The primary key
-- (entity_id, domain) serves the unfiltered listing: its leading column is
-- the order of the pages, and the domain is checked in the index.
-- {{schema}} is replaced by the quoted schema name.

-- States: one state is a range of this index in entity id order; several
-- are one range each.
CREATE INDEX registration_projections_state
    ON {{schema}}.registration_projections (domain, current_state, entity_id);

-- Node type, in entity id order within a type.
CREATE INDEX registration_projections_node_type
    ON {{schema}}.registration_projections (domain, node_type, entity_id);

-- Capabilities: capabilities @> jsonb_build_object(name, true).
CREATE INDEX registration_projections_capabilities
    ON {{schema}}.registration_projections USING gin (capabilities jsonb_path_ops);

-- Updated since: a range of updated_at within a domain.
CREATE INDEX registration_projections_updated
    ON {{schema}}.registration_projections (domain, updated_at);
