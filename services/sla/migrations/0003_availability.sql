-- Availability of business services (issue 5): the catalogue, outage signals, merged outages, published
-- monthly figures, burn-rate alert states, anomalies and the audit trail.

-- The business service catalogue: seeded from YAML into an empty database, managed by PUT /services.
CREATE TABLE business_service (
    id text PRIMARY KEY,
    definition jsonb NOT NULL,
    -- Maintenance windows (one-off and recurring), replaced as a whole by PUT /services/{id}/maintenance.
    maintenance jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- When the scheduler next evaluates burn-rate alerts and closes months for this service.
    next_evaluation_at timestamptz
);
CREATE INDEX business_service_next_evaluation ON business_service (next_evaluation_at)
    WHERE next_evaluation_at IS NOT NULL;

-- Settings of the availability part that are not per service (the major-incident rule).
CREATE TABLE availability_setting (
    name text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every outage signal event as received: the input the signal's episodes are folded from.
CREATE TABLE outage_signal_event (
    event_id text PRIMARY KEY,
    signal_key text NOT NULL,
    kind text NOT NULL,
    occurred_at timestamptz NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    impact text NOT NULL,
    planned boolean NOT NULL,
    payload jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outage_signal_event_signal ON outage_signal_event (signal_key, occurred_at);

-- One row per signal (an alert, a paging incident, a major-incident ticket): its stretches of outage
-- and the business service it counts for (NULL while unmapped: kept, and counted once mapped).
CREATE TABLE outage_signal (
    signal_key text PRIMARY KEY,
    source text NOT NULL,
    business_service text,
    reported_service text,
    service_reference text NOT NULL,
    labels jsonb NOT NULL DEFAULT '{}',
    title text,
    episodes jsonb NOT NULL DEFAULT '[]',
    first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outage_signal_service ON outage_signal (business_service);

-- The merged outages of each business service, with ids that stay stable across corrections.
CREATE TABLE service_outage (
    id bigserial PRIMARY KEY,
    business_service text NOT NULL,
    started_at timestamptz NOT NULL,
    restored_at timestamptz,
    impact text NOT NULL,
    status text NOT NULL,
    signals jsonb NOT NULL DEFAULT '[]',
    revision integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX service_outage_service ON service_outage (business_service, started_at);

-- What AvailabilityComputed last said for each service and calendar month; final once the month ended.
CREATE TABLE availability_month (
    business_service text NOT NULL,
    period text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    as_of timestamptz NOT NULL,
    final boolean NOT NULL,
    figures jsonb NOT NULL,
    revision integer NOT NULL DEFAULT 1,
    PRIMARY KEY (business_service, period)
);

-- Which multiwindow burn-rate alerts fire for each service, so objective_at_risk is announced once.
CREATE TABLE burn_alert_state (
    business_service text NOT NULL,
    alert text NOT NULL,
    firing boolean NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (business_service, alert)
);

-- Input that cannot be true or cannot be placed: kept and shown, never silently dropped.
CREATE TABLE availability_anomaly (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    signal_key text NOT NULL,
    event_id text NOT NULL DEFAULT '',
    business_service text,
    detail text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set when the anomaly no longer holds (an unmapped signal whose service was added to the catalogue).
    resolved_at timestamptz,
    -- The detail names the offending instants, so the same bad input under another event id is kept once.
    UNIQUE (kind, signal_key, detail)
);
CREATE UNIQUE INDEX availability_anomaly_unmapped ON availability_anomaly (signal_key)
    WHERE kind = 'unmapped_service';
CREATE INDEX availability_anomaly_open ON availability_anomaly (recorded_at) WHERE resolved_at IS NULL;

-- The audit trail: corrected signals, changed catalogue entries and windows, and every publication of
-- monthly figures with what they were before.
CREATE TABLE availability_audit (
    id bigserial PRIMARY KEY,
    business_service text,
    period text,
    kind text NOT NULL,
    cause text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX availability_audit_service ON availability_audit (business_service, recorded_at);
