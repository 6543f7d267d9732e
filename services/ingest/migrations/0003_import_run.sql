-- One row per imported file (by content digest): how far it got, so an import resumes and a
-- second import of the same file changes nothing.
CREATE TABLE import_run (
    file_digest text PRIMARY KEY,
    kind text NOT NULL,
    name text NOT NULL,
    last_line integer NOT NULL DEFAULT 0,
    rows_read bigint NOT NULL DEFAULT 0,
    events_emitted bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
