-- The read models the scorecards are computed from, built only from the topics (so `bothways reporting
-- rebuild` can drop them and fold every event again from offset zero). Months are UTC calendar months.

-- ticket_fact replaces ticket_status (the ticket counts read it now); rebuild after upgrading to fill it.
DROP TABLE ticket_status;

-- Every business service any event named: the list of scorecards, and "unknown service" answers.
CREATE TABLE business_service (
    name text PRIMARY KEY
);

-- The newest snapshot of each ticket (an older, late snapshot changes nothing).
CREATE TABLE ticket_fact (
    ticket_key text PRIMARY KEY,
    business_service text,
    assignment_group text,
    priority text,
    kind text NOT NULL,
    status_category text NOT NULL,
    created_at timestamptz NOT NULL,
    -- The resolution that stands: null while the ticket is not resolved or closed (e.g. after a reopen).
    resolved_at timestamptz,
    reopen_count integer NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX ticket_fact_status_category ON ticket_fact (status_category);
CREATE INDEX ticket_fact_created ON ticket_fact (business_service, created_at);
CREATE INDEX ticket_fact_resolved ON ticket_fact (business_service, resolved_at) WHERE resolved_at IS NOT NULL;

-- Each SLA timer (a metric of a cycle, per priority attachment) as its last event left it.
CREATE TABLE sla_timer (
    ticket_key text NOT NULL,
    timer_key text NOT NULL,
    metric text NOT NULL,
    cycle integer NOT NULL,
    priority text,
    state text NOT NULL,
    business_service text,
    assignment_group text,
    started_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    stopped_at timestamptz,
    -- The breach instant from io.bothways.sla.breached; cleared when the breach is retracted.
    breached_at timestamptz,
    -- The last warning threshold crossing: a running, warned timer is "at risk".
    warned_at timestamptz,
    target_business_seconds integer NOT NULL,
    business_elapsed_seconds integer NOT NULL,
    remaining_business_seconds integer NOT NULL,
    percent_elapsed double precision NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- The month an outcome belongs to is fixed by when it was decided: met when the clock stopped,
    -- breached when the target was exceeded (not when the late ticket was finally resolved).
    decided_at timestamptz GENERATED ALWAYS AS (
        CASE state WHEN 'met' THEN stopped_at WHEN 'breached' THEN coalesce(breached_at, due_at) END
    ) STORED,
    PRIMARY KEY (ticket_key, timer_key)
);
CREATE INDEX sla_timer_decided ON sla_timer (business_service, decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX sla_timer_at_risk ON sla_timer (due_at) WHERE state = 'running' AND warned_at IS NOT NULL;
-- The latest decided resolution timer of a ticket, read without visiting the table (resolution times).
CREATE INDEX sla_timer_resolution ON sla_timer (ticket_key, cycle DESC, occurred_at DESC)
    INCLUDE (state, business_elapsed_seconds, stopped_at)
    WHERE metric = 'resolution' AND state IN ('met', 'breached');

-- The availability of a business service for a month; a later computation replaces an earlier one.
CREATE TABLE availability (
    business_service text NOT NULL,
    period text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    objective_percent double precision NOT NULL,
    agreed_seconds bigint NOT NULL,
    downtime_seconds double precision NOT NULL,
    availability_percent double precision,
    error_budget_seconds double precision NOT NULL,
    budget_remaining_seconds double precision NOT NULL,
    outages integer NOT NULL,
    mtrs_seconds double precision,
    mtbf_seconds double precision,
    correction boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (business_service, period)
);

-- Each survey invitation's steps (the first instant of each), for invitations sent and response rates.
CREATE TABLE survey_invitation (
    invitation_id text PRIMARY KEY,
    survey_kind text NOT NULL,
    ticket_key text,
    campaign_id text,
    business_service text,
    assignment_group text,
    priority text,
    scheduled_at timestamptz,
    throttled_at timestamptz,
    sent_at timestamptz,
    delivery_failed_at timestamptz,
    expired_at timestamptz
);
CREATE INDEX survey_invitation_sent ON survey_invitation (business_service, sent_at) WHERE sent_at IS NOT NULL;

-- The answer to an invitation (the latest one, should a person answer again), with its band.
CREATE TABLE survey_answer (
    invitation_id text PRIMARY KEY,
    survey_kind text NOT NULL,
    ticket_key text,
    business_service text,
    assignment_group text,
    priority text,
    answered_at timestamptz NOT NULL,
    score integer NOT NULL,
    scale text NOT NULL,
    -- satisfied | neutral | dissatisfied (CSAT), promoter | passive | detractor (NPS)
    band text NOT NULL,
    reason text,
    comment text
);
CREATE INDEX survey_answer_answered ON survey_answer (business_service, answered_at);
CREATE INDEX survey_answer_ticket ON survey_answer (ticket_key) WHERE ticket_key IS NOT NULL;

-- The follow-up of each unhappy answer: open until closed.
CREATE TABLE followup (
    followup_id text PRIMARY KEY,
    invitation_id text NOT NULL,
    ticket_key text,
    business_service text,
    assignment_group text,
    opened_at timestamptz,
    due_at timestamptz NOT NULL,
    overdue_at timestamptz,
    closed_at timestamptz,
    outcome text
);
CREATE INDEX followup_open ON followup (due_at) WHERE closed_at IS NULL;
CREATE INDEX followup_opened ON followup (business_service, opened_at);
