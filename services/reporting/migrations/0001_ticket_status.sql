-- The latest status category of each ticket, for the ticket counts (a first read model).
CREATE TABLE ticket_status (
    ticket_key text PRIMARY KEY,
    status_category text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX ticket_status_category ON ticket_status (status_category);
