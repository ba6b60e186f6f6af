-- Undoes 0003: the active-node listing's index.
DROP INDEX {{schema}}.registration_projections_active;
