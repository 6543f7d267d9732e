-- Every snapshot of every ticket, in the order it happened (occurred_at), whatever the arrival order.
CREATE TABLE ticket_event (
    event_id text PRIMARY KEY,
    ticket_key text NOT NULL,
    occurred_at timestamptz NOT NULL,
    change text NOT NULL,
    status_category text NOT NULL,
    snapshot jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ticket_event_history ON ticket_event (ticket_key, occurred_at, event_id);

-- The latest snapshot per ticket by occurred_at: a late event never overwrites a newer one.
CREATE TABLE ticket (
    ticket_key text PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    status_category text NOT NULL,
    snapshot jsonb NOT NULL,
    event_count integer NOT NULL DEFAULT 1
);
