-- The what-if simulation picks the tickets created in a period: a column and an index, so that it
-- does not parse every ticket's snapshot (a cast from text is not immutable, so no expression index).
ALTER TABLE ticket ADD COLUMN created_at timestamptz;
UPDATE ticket SET created_at = (snapshot->>'created_at')::timestamptz;
CREATE INDEX ticket_created ON ticket (created_at);
