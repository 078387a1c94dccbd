-- Budgets and rate limits (DESIGN §11): one jsonb object per row with
-- LiteLLM's field names (max_budget, budget_duration, soft_budget,
-- rpm_limit, tpm_limit, max_parallel_requests; on keys also
-- model_rpm_limit, model_tpm_limit, model_max_budget). An absent field is
-- no limit. The limiter reads the records, never this column directly, so
-- one column keeps the schema unchanged when a limit is added.

ALTER TABLE teams ADD COLUMN limits jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object');
ALTER TABLE users ADD COLUMN limits jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object');
ALTER TABLE keys ADD COLUMN limits jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object');

---- create above / drop below ----

ALTER TABLE keys DROP COLUMN limits;
ALTER TABLE users DROP COLUMN limits;
ALTER TABLE teams DROP COLUMN limits;
