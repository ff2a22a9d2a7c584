-- 0009_exports: where model versions went outside Kiln.
--
-- exports keeps every standalone predictor `kiln export` wrote for a
-- registered version: the target (OS/arch, wasm or c), the format
-- (executable, wasm or c), the file and its SHA-256, who and when, so
-- "where is this model deployed" includes devices.

CREATE TABLE exports (
    model       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    target      TEXT NOT NULL,
    format      TEXT NOT NULL,
    path        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    exported_by TEXT NOT NULL,
    exported_at TEXT NOT NULL
);

CREATE INDEX exports_model ON exports (model, version);
