-- 0001_init: models, immutable versions, aliases and the alias history.
--
-- Portable SQL (SQLite and PostgreSQL): no auto-increment columns (numbers
-- come from counter rows updated with RETURNING), times are UTC RFC 3339 text
-- with a fixed nine-digit fraction so that text order is time order, metrics
-- and params are JSON text.

CREATE TABLE models (
    name         TEXT NOT NULL PRIMARY KEY,
    -- last_version is the number given to the model's newest version; it is
    -- incremented with UPDATE ... RETURNING, which also serialises concurrent
    -- registrations of the same model.
    last_version BIGINT NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    -- updated_at is the time of the latest registration or alias change.
    updated_at   TEXT NOT NULL
);

CREATE TABLE versions (
    model        TEXT NOT NULL REFERENCES models (name),
    version      BIGINT NOT NULL,
    bundle_uri   TEXT NOT NULL,
    status       TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    params       TEXT NOT NULL,
    dataset_hash TEXT NOT NULL,
    spec_hash    TEXT NOT NULL,
    pipeline     TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    runtime      TEXT NOT NULL,
    image        TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (model, version)
);

-- One version per (model, run, step): registration from a retried workflow
-- activity is idempotent. Versions registered outside a run have run_id ''.
CREATE UNIQUE INDEX versions_run_step ON versions (model, run_id, step) WHERE run_id <> '';

CREATE TABLE aliases (
    model      TEXT NOT NULL,
    alias      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);

CREATE TABLE alias_events (
    id           BIGINT NOT NULL PRIMARY KEY,
    model        TEXT NOT NULL REFERENCES models (name),
    alias        TEXT NOT NULL,
    -- 0 means the alias did not exist before (from) or was removed (to).
    from_version BIGINT NOT NULL,
    to_version   BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    moved_at     TEXT NOT NULL
);

CREATE INDEX alias_events_model_alias ON alias_events (model, alias, moved_at);

-- Counters hand out numbers portably: UPDATE counters SET value = value + 1
-- WHERE name = ... RETURNING value.
CREATE TABLE counters (
    name  TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('alias_events', 0);
