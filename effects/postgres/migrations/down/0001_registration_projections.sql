-- Undoes 0001: the projection table (its indexes go with it) and the state
-- enum. The schema stays: it may have existed before (public always does)
-- and may hold other objects, such as a migration tool's version table.
DROP TABLE {{schema}}.registration_projections;
DROP TYPE {{schema}}.registration_state;
