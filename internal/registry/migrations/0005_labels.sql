-- 0005_labels: late labels are data. Each pushed labels file is normalised to
-- a Parquet file (id, label, time) stored content-addressed under the
-- artifacts (labels/<model>/<sha256>.parquet); label_batches records one row
-- per (model, sha256), numbered in push order from the counter
-- 'label_batches'.
--
-- source is the pushed file's name (a path or an object URL), source_sha256
-- the SHA-256 of its bytes; with the three column names it identifies a push,
-- so pushing the same file with the same columns again is one batch even
-- when its rows take their time from the push (rows without a time).
-- rejected counts the file's rows that were not accepted (no ID, no valid
-- label, a bad time).

CREATE TABLE label_batches (
    id            BIGINT NOT NULL,
    model         TEXT NOT NULL REFERENCES models (name),
    sha256        TEXT NOT NULL,
    uri           TEXT NOT NULL,
    row_count     BIGINT NOT NULL,
    rejected      BIGINT NOT NULL,
    source        TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    id_column     TEXT NOT NULL,
    label_column  TEXT NOT NULL,
    time_column   TEXT NOT NULL,
    pushed_by     TEXT NOT NULL,
    pushed_at     TEXT NOT NULL,
    PRIMARY KEY (model, sha256)
);

CREATE UNIQUE INDEX label_batches_id ON label_batches (id);
CREATE UNIQUE INDEX label_batches_source ON label_batches (model, source_sha256, id_column, label_column, time_column)
    WHERE source_sha256 <> '';
CREATE INDEX label_batches_pushed ON label_batches (model, pushed_at);

INSERT INTO counters (name, value) VALUES ('label_batches', 0);
