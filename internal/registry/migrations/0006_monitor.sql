-- 0006_monitor: the monitor's time series of judgements.
--
-- monitor_windows keeps what each window measured (the JSON of
-- monitor.Window: drift per feature, live metrics, label counts, serving
-- health), one row per (model, window end). monitor_decisions keeps every
-- decision taken after a window, retrain or not, with its reason and the
-- figure that decided; a retrain's pipeline run names its decision, and the
-- versions it registers keep it in trigger_ref.

CREATE TABLE monitor_windows (
    model        TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    window_start TEXT NOT NULL,
    version      BIGINT NOT NULL,
    row_count    BIGINT NOT NULL,
    labeled      BIGINT NOT NULL,
    drift_share  DOUBLE PRECISION NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (model, window_end)
);

CREATE TABLE monitor_decisions (
    id           BIGINT NOT NULL PRIMARY KEY,
    model        TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    decided_at   TEXT NOT NULL,
    action       TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    reason       TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    workflow_id  TEXT NOT NULL
);

CREATE INDEX monitor_decisions_model ON monitor_decisions (model, window_end);
CREATE UNIQUE INDEX monitor_decisions_window ON monitor_decisions (model, window_end);

INSERT INTO counters (name, value) VALUES ('monitor_decisions', 0);

ALTER TABLE versions ADD COLUMN trigger_ref TEXT NOT NULL DEFAULT '';
