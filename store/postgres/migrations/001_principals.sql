-- Teams, users and virtual keys. Keys are stored only as SHA-256 hashes:
-- the CHECK constraints refuse anything that could be a plaintext key, in the
-- hash column or in the display form (at most the last 4 characters).
-- Ids use the "C" collation: byte order for lists, whatever the database's
-- locale, as the in-memory store sorts.

CREATE TABLE teams (
    team_id       text COLLATE "C" PRIMARY KEY CHECK (team_id <> ''),
    alias         text NOT NULL DEFAULT '',
    models        text[] NOT NULL DEFAULT '{}',
    model_aliases jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(model_aliases) = 'object'),
    blocked       boolean NOT NULL DEFAULT false,
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    user_id    text COLLATE "C" PRIMARY KEY CHECK (user_id <> ''),
    email      text NOT NULL DEFAULT '',
    role       text NOT NULL DEFAULT '',
    models     text[] NOT NULL DEFAULT '{}',
    metadata   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE keys (
    key_hash   text COLLATE "C" PRIMARY KEY CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    display    text NOT NULL DEFAULT '' CHECK (display = '' OR display ~ '^sk-\.\.\..{0,4}$'),
    alias      text NOT NULL DEFAULT '',
    role       text NOT NULL DEFAULT '',
    models     text[] NOT NULL DEFAULT '{}',
    aliases    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(aliases) = 'object'),
    team_id    text COLLATE "C" REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id    text COLLATE "C" REFERENCES users (user_id) ON DELETE CASCADE,
    metadata   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    blocked    boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX keys_team_id_idx ON keys (team_id);
CREATE INDEX keys_user_id_idx ON keys (user_id);
-- ListKeys pages in creation order.
CREATE INDEX keys_created_at_idx ON keys (created_at, key_hash);

---- create above / drop below ----

DROP TABLE keys;
DROP TABLE users;
DROP TABLE teams;
