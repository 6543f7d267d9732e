-- Everyone seen as a requester. Events carry the pseudonymous person_id, never the address.
CREATE TABLE person (
    person_id text PRIMARY KEY,
    -- lower(e-mail), or '<source>:<requester id>' for a requester without an address
    identity text NOT NULL UNIQUE,
    email text,
    name text,
    organization text,
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

-- Each ticket's newest state by occurred_at, and how many times it reached resolved or closed.
CREATE TABLE ticket (
    ticket_key text PRIMARY KEY,
    source text NOT NULL,
    occurred_at timestamptz NOT NULL,
    status_category text NOT NULL,
    cycle integer NOT NULL DEFAULT 0,
    person_id text REFERENCES person,
    business_service text,
    organization text
);
-- NPS populations: requesters with ticket activity in a window, per business service or organisation.
CREATE INDEX ticket_activity ON ticket (occurred_at) INCLUDE (person_id, business_service, organization);

-- A relationship (NPS) survey: who is asked, and when.
CREATE TABLE campaign (
    campaign_id text PRIMARY KEY,
    name text NOT NULL,
    question text NOT NULL,
    comment_prompt text NOT NULL,
    active_within_days integer NOT NULL CHECK (active_within_days > 0),
    business_services text[] NOT NULL DEFAULT '{}',
    organizations text[] NOT NULL DEFAULT '{}',
    first_run_at timestamptz NOT NULL,
    every_days integer CHECK (every_days > 0),
    expiry_seconds integer NOT NULL CHECK (expiry_seconds > 0),
    next_run_at timestamptz,
    runs integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    stopped_at timestamptz
);
CREATE INDEX campaign_due ON campaign (next_run_at) WHERE next_run_at IS NOT NULL;

-- One run of a campaign: the population it found and what became of it.
CREATE TABLE campaign_run (
    campaign_id text NOT NULL REFERENCES campaign,
    run integer NOT NULL,
    run_at timestamptz NOT NULL,
    population integer NOT NULL,
    scheduled integer NOT NULL,
    throttled integer NOT NULL,
    PRIMARY KEY (campaign_id, run)
);

-- One survey invitation, from candidate to answer. `due_at` is when the scheduler must look at it
-- next (evaluate a candidate, send, reclaim an expired lease, expire); NULL when nothing is due.
CREATE TABLE invitation (
    invitation_id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('csat', 'nps')),
    state text NOT NULL CHECK (state IN ('pending', 'excluded', 'throttled', 'canceled', 'scheduled',
                                         'sending', 'sent', 'answered', 'expired', 'failed')),
    person_id text REFERENCES person,
    created_at timestamptz NOT NULL,
    due_at timestamptz,
    -- CSAT: the ticket and its resolution cycle; NPS: the campaign and its run
    ticket_key text,
    cycle integer,
    campaign_id text REFERENCES campaign,
    campaign_run integer,
    -- a re-survey after a follow-up: exempt from the fatigue budget
    resurvey_of uuid REFERENCES invitation,
    -- attribution as it was at resolution
    source text,
    external_id text,
    ticket_kind text,
    ticket_title text,
    business_service text,
    assignment_group text,
    assignee text,
    priority text,
    organization text,
    resolved_at timestamptz,
    -- the rule that applied and what it decided
    rule text,
    scale text CHECK (scale IN ('five_point', 'two_point', 'nps')),
    expiry_seconds integer,
    reason_code text,
    reason text,
    -- delivery
    send_at timestamptz,
    channel text,
    attempts integer NOT NULL DEFAULT 0,
    -- attempts made before an administrator's retry: the retry budget counts from here
    attempt_offset integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    last_error text,
    sent_at timestamptz,
    expires_at timestamptz,
    failed_at timestamptz,
    expired_at timestamptz,
    -- the current answer (every revision is kept in `answer`)
    score integer,
    band text,
    answer_reason text,
    comment text,
    first_answered_at timestamptz,
    answered_at timestamptz,
    revision integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX invitation_one_per_resolution ON invitation (ticket_key, cycle)
    WHERE kind = 'csat' AND resurvey_of IS NULL;
CREATE UNIQUE INDEX invitation_one_per_campaign_run ON invitation (campaign_id, campaign_run, person_id)
    WHERE campaign_id IS NOT NULL AND resurvey_of IS NULL;
CREATE INDEX invitation_due ON invitation (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX invitation_person ON invitation (person_id, send_at);
CREATE INDEX invitation_ticket ON invitation (ticket_key);
CREATE INDEX invitation_sent_at ON invitation (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX invitation_first_answered_at ON invitation (first_answered_at) WHERE first_answered_at IS NOT NULL;
CREATE INDEX invitation_state ON invitation (state, created_at);

-- Every attempt to deliver, written before the send: a crash mid-send leaves a visible attempt.
CREATE TABLE delivery_attempt (
    invitation_id uuid NOT NULL REFERENCES invitation,
    attempt integer NOT NULL,
    channel text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text CHECK (outcome IN ('delivered', 'failed', 'unknown')),
    error text,
    PRIMARY KEY (invitation_id, attempt)
);

-- Every answer given, in order; the invitation holds the latest.
CREATE TABLE answer (
    invitation_id uuid NOT NULL REFERENCES invitation,
    revision integer NOT NULL,
    score integer NOT NULL,
    reason text,
    comment text,
    answered_at timestamptz NOT NULL,
    PRIMARY KEY (invitation_id, revision)
);

-- The closed loop after an unhappy answer.
CREATE TABLE followup (
    followup_id uuid PRIMARY KEY,
    invitation_id uuid NOT NULL UNIQUE REFERENCES invitation,
    state text NOT NULL CHECK (state IN ('open', 'overdue', 'closed')),
    opened_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    overdue_at timestamptz,
    closed_at timestamptz,
    outcome text,
    note text,
    resurvey_invitation_id uuid REFERENCES invitation,
    -- the optional signed webhook that reopens or annotates the original ticket
    ticket_action text CHECK (ticket_action IN ('annotate', 'reopen')),
    ticket_action_state text CHECK (ticket_action_state IN ('pending', 'sending', 'done', 'failed')),
    ticket_action_due_at timestamptz,
    ticket_action_attempts integer NOT NULL DEFAULT 0,
    ticket_action_error text
);
CREATE INDEX followup_state ON followup (state, due_at);
CREATE INDEX followup_overdue_due ON followup (due_at) WHERE state = 'open';
CREATE INDEX followup_action_due ON followup (ticket_action_due_at) WHERE ticket_action_due_at IS NOT NULL;
