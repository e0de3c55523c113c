-- The directory's initial schema. Portable across SQLite and PostgreSQL:
-- ids are canonical UUID text, times are microseconds since the Unix epoch,
-- and the *_key columns hold case-folded text for case-insensitive unique
-- keys.

CREATE TABLE installation (
    id INTEGER PRIMARY KEY,
    epoch TEXT NOT NULL,
    page_token_secret TEXT NOT NULL,
    create_time_us BIGINT NOT NULL
);

CREATE TABLE change_head (
    id INTEGER PRIMARY KEY,
    revision BIGINT NOT NULL,
    purged_through BIGINT NOT NULL
);

CREATE TABLE change_batches (
    revision BIGINT PRIMARY KEY,
    actor TEXT,
    request_id TEXT,
    traceparent TEXT,
    commit_time_us BIGINT NOT NULL
);

CREATE TABLE changes (
    revision BIGINT NOT NULL REFERENCES change_batches (revision) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    organization_id TEXT,
    payload TEXT NOT NULL,
    PRIMARY KEY (revision, position)
);
CREATE INDEX changes_organization_idx ON changes (organization_id, revision);

CREATE TABLE idempotency_records (
    idempotency_key TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    create_time_us BIGINT NOT NULL
);
CREATE INDEX idempotency_records_time_idx ON idempotency_records (create_time_us);

CREATE TABLE resource_types (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    display_name TEXT NOT NULL,
    settings TEXT NOT NULL,
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (name_key);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    login_key TEXT NOT NULL,
    email TEXT,
    email_key TEXT,
    display_name TEXT NOT NULL,
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_login_key ON users (login_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE members (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    description TEXT NOT NULL,
    color TEXT NOT NULL,
    parent_team_id TEXT REFERENCES teams (id),
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name_key ON teams (organization_id, name_key);
CREATE INDEX teams_parent_idx ON teams (parent_team_id);

CREATE TABLE team_memberships (
    team_id TEXT NOT NULL REFERENCES teams (id),
    user_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    added_by TEXT,
    add_time_us BIGINT NOT NULL,
    expire_time_us BIGINT,
    PRIMARY KEY (team_id, user_id),
    FOREIGN KEY (organization_id, user_id) REFERENCES members (organization_id, user_id)
);
CREATE INDEX team_memberships_user_idx ON team_memberships (user_id, team_id);
CREATE INDEX team_memberships_member_idx ON team_memberships (organization_id, user_id);

-- A leader is always a member: the foreign key enforces it.
CREATE TABLE team_leaders (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id),
    FOREIGN KEY (team_id, user_id) REFERENCES team_memberships (team_id, user_id)
);

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    resource_type TEXT NOT NULL REFERENCES resource_types (name),
    external_id TEXT NOT NULL,
    external_id_key TEXT NOT NULL,
    display_name TEXT NOT NULL,
    parent_resource_id TEXT REFERENCES resources (id),
    inherits BOOLEAN NOT NULL,
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX resources_external_id_key ON resources (organization_id, resource_type, external_id_key);
CREATE INDEX resources_parent_idx ON resources (parent_resource_id);

-- One grant per subject and resource. The subject is a team or a user, so
-- the storage layer checks it exists and removes its grants with it.
CREATE TABLE grants (
    resource_id TEXT NOT NULL REFERENCES resources (id),
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    permissions TEXT NOT NULL,
    no_access BOOLEAN NOT NULL,
    expire_time_us BIGINT,
    granted_by TEXT,
    create_time_us BIGINT NOT NULL,
    update_time_us BIGINT NOT NULL,
    PRIMARY KEY (resource_id, subject_kind, subject_id)
);
CREATE INDEX grants_subject_idx ON grants (subject_kind, subject_id);
CREATE INDEX grants_organization_idx ON grants (organization_id, resource_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL,
    state TEXT NOT NULL,
    invited_by TEXT,
    create_time_us BIGINT NOT NULL,
    expire_time_us BIGINT NOT NULL,
    accepted_user_id TEXT,
    accept_time_us BIGINT
);
CREATE INDEX invitations_organization_idx ON invitations (organization_id, id);

CREATE TABLE invitation_teams (
    invitation_id TEXT NOT NULL REFERENCES invitations (id),
    team_id TEXT NOT NULL REFERENCES teams (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (invitation_id, team_id)
);
CREATE INDEX invitation_teams_team_idx ON invitation_teams (team_id);
