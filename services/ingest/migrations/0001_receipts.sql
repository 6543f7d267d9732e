-- Every authenticated delivery as it arrived, so events can be re-derived after a mapping fix.
CREATE TABLE receipt (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    delivery_id text NOT NULL,
    received_at timestamptz NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('accepted', 'ignored')),
    event_ids text[] NOT NULL DEFAULT '{}',
    note text,
    UNIQUE (source, delivery_id)
);
CREATE INDEX receipt_source_received_at ON receipt (source, received_at);
