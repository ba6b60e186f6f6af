-- Undoes 0002: the outbox table, with its index and identity sequence.
-- Records still in it are lost.
DROP TABLE {{schema}}.registration_outbox;
