-- SLA configuration, versioned: a running timer keeps the versions it started with.
CREATE TABLE sla_calendar (
    name text NOT NULL,
    version integer NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE sla_policy (
    name text NOT NULL,
    version integer NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- The policies in force, in order (first match wins); replaced as a whole by PUT /policies.
CREATE TABLE sla_policy_order (
    position integer PRIMARY KEY,
    name text NOT NULL,
    version integer NOT NULL,
    FOREIGN KEY (name, version) REFERENCES sla_policy (name, version)
);

-- Per ticket: the versions its timers count on, and the instant up to which transitions were announced.
ALTER TABLE ticket
    ADD COLUMN policy text,
    ADD COLUMN policy_version integer,
    ADD COLUMN calendar_versions jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN evaluated_at timestamptz;

-- Every timer as of its ticket's last evaluation; the scheduler fires `marks` (pending warnings and
-- the breach, in time order) from here without reading the history.
CREATE TABLE sla_timer (
    ticket_key text NOT NULL,
    timer_key text NOT NULL,
    metric text NOT NULL,
    cycle integer NOT NULL,
    priority text,
    policy text NOT NULL,
    policy_version integer NOT NULL,
    calendar text NOT NULL,
    state text NOT NULL,
    superseded boolean NOT NULL,
    started_at timestamptz NOT NULL,
    attached_at timestamptz NOT NULL,
    stopped_at timestamptz,
    due_at timestamptz NOT NULL,
    breaches_at timestamptz NOT NULL,
    breached_at timestamptz,
    evaluated_at timestamptz NOT NULL,
    target_business_seconds integer NOT NULL,
    business_elapsed_seconds integer NOT NULL,
    announced_warnings jsonb NOT NULL DEFAULT '[]',
    marks jsonb NOT NULL DEFAULT '[]',
    next_due_at timestamptz,
    retractions integer NOT NULL DEFAULT 0,
    source text,
    kind text,
    business_service text,
    assignment_group text,
    assignee text,
    organization text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ticket_key, timer_key)
);
CREATE INDEX sla_timer_next_due ON sla_timer (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE INDEX sla_timer_state ON sla_timer (state, business_service, priority);
CREATE INDEX sla_timer_at_risk ON sla_timer (breaches_at) WHERE state = 'running';

-- The audit trail: every SLA event emitted, retractions included.
CREATE TABLE sla_emission (
    event_id text PRIMARY KEY,
    ticket_key text NOT NULL,
    timer_key text NOT NULL,
    kind text NOT NULL,
    occurred_at timestamptz NOT NULL,
    threshold_percent double precision,
    retroactive boolean NOT NULL,
    emitted_at timestamptz NOT NULL,
    lateness_seconds double precision
);
CREATE INDEX sla_emission_ticket ON sla_emission (ticket_key, occurred_at);
