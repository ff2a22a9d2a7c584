-- 0007_deployments: each model's current traffic split on its model servers.
--
-- A deploy step writes the split here before it sends it to the servers, so
-- a model server that starts (or restarts) serves what the rollout in
-- progress last decided, not only the production alias.

CREATE TABLE deployments (
    model          TEXT NOT NULL PRIMARY KEY,
    stable_version BIGINT NOT NULL,
    stable_uri     TEXT NOT NULL,
    canary_version BIGINT NOT NULL,
    canary_uri     TEXT NOT NULL,
    canary_percent BIGINT NOT NULL,
    updated_at     TEXT NOT NULL,
    run_id         TEXT NOT NULL
);
