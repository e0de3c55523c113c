-- Audit events and organization roles given to teams.

-- One row per entity a write changed. Not tied to change_batches, because
-- the change log is purged on its own schedule.
CREATE TABLE audit_events (
    revision BIGINT NOT NULL,
    position INTEGER NOT NULL,
    organization_id TEXT,
    actor TEXT,
    request_id TEXT,
    traceparent TEXT,
    method TEXT,
    operation TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    event_time_us BIGINT NOT NULL,
    PRIMARY KEY (revision, position)
);
CREATE INDEX audit_events_organization_idx ON audit_events (organization_id, revision, position);
CREATE INDEX audit_events_entity_idx ON audit_events (organization_id, entity_kind, entity_id, revision);
CREATE INDEX audit_events_actor_idx ON audit_events (organization_id, actor, revision);
CREATE INDEX audit_events_method_idx ON audit_events (organization_id, method, revision);
CREATE INDEX audit_events_time_idx ON audit_events (event_time_us);

-- The organization role (administrator or collaborator) every active member
-- of the team and of its descendant teams holds; NULL for none.
ALTER TABLE teams ADD COLUMN organization_role TEXT;
CREATE INDEX teams_role_idx ON teams (organization_id, organization_role);
