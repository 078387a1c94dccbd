-- Spend, daily usage and live replicas (DESIGN §11).

-- gateway_spend holds each layer's spend in its current budget period: a
-- key, team or user by id, or a key's model group (model). Replicas add
-- what they counted about once a second; a newer period replaces an older
-- one.
CREATE TABLE gateway_spend (
    layer        text NOT NULL,
    id           text NOT NULL,
    model        text NOT NULL DEFAULT '',
    period_start timestamptz NOT NULL,
    spend        double precision NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer, id, model)
);
CREATE INDEX gateway_spend_updated_at ON gateway_spend (updated_at);

-- gateway_usage_daily replaces a row per request: one row per day, key,
-- team, user and model group ('' where there is none).
CREATE TABLE gateway_usage_daily (
    day               date NOT NULL,
    key_id            text NOT NULL,
    team_id           text NOT NULL,
    user_id           text NOT NULL,
    model_group       text NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    spend             double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, team_id, user_id, model_group)
);

-- gateway_replicas lists the replicas that synced lately: each enforces
-- its share of the rate limits.
CREATE TABLE gateway_replicas (
    id      text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
