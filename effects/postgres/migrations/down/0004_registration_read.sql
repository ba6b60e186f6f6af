-- Undoes 0004: the read API's indexes.
DROP INDEX {{schema}}.registration_projections_updated;
DROP INDEX {{schema}}.registration_projections_capabilities;
DROP INDEX {{schema}}.registration_projections_node_type;
DROP INDEX {{schema}}.registration_projections_state;
