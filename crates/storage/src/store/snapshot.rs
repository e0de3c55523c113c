//! Consistent snapshots of the whole directory or of one organization.
//!
//! A snapshot runs on its own task in one read-only transaction: REPEATABLE
//! READ on PostgreSQL, a WAL read transaction on SQLite. It reads the head
//! revision first, then pages through each table by key and sends each page
//! as a chunk. Memory stays bounded by the chunk size and the channel depth,
//! whatever the table sizes.

use std::collections::HashMap;
use std::pin::Pin;

use futures::Stream;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{mpsc, oneshot};
use workteams_domain::{ConsistencyToken, Entity, OrganizationId, ResourceTypeDef, TeamId};

use super::memberships::after_pair;
use super::{Store, lookup, read_head, rows};
use crate::StoreError;
use crate::schema::tables::{
    grants, invitation_teams, invitations, members, organizations, resource_types, resources, team_memberships, teams,
    users,
};

/// Chunks of entities of a snapshot, in dependency order: resource types,
/// users, organizations, members, teams, memberships, resources, grants,
/// invitations.
pub type SnapshotChunks = Pin<Box<dyn Stream<Item = Result<Vec<Entity>, StoreError>> + Send>>;

/// The state at one revision.
pub struct Snapshot {
    /// The revision every chunk was read at.
    pub token: ConsistencyToken,
    pub chunks: SnapshotChunks,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("token", &self.token).finish_non_exhaustive()
    }
}

/// Chunks buffered ahead of a slow reader.
const CHUNKS_IN_FLIGHT: usize = 2;
/// Largest chunk; larger requests are capped.
const MAX_CHUNK_SIZE: usize = 10_000;

/// The channel of snapshot chunks. A send fails once the reader is gone.
type ChunkSender = mpsc::Sender<Result<Vec<Entity>, StoreError>>;

/// The reader dropped the stream; the snapshot stops quietly.
struct ReaderGone;

impl Store {
    /// Reads the whole state, or one organization's (with the users that
    /// are its members and all resource types), at one consistent revision,
    /// in chunks of at most `chunk_size` entities (0 takes 1,000).
    ///
    /// Errors: `NotFound` on `organization_id`; a failure while streaming
    /// arrives as the stream's last item.
    pub async fn export_snapshot(
        &self,
        organization_id: Option<OrganizationId>,
        chunk_size: usize,
    ) -> Result<Snapshot, StoreError> {
        if let Some(organization_id) = organization_id {
            lookup::require_organization(self.db(), organization_id, "organization_id").await?;
        }
        let chunk_size = match chunk_size {
            0 => 1_000,
            size => size.min(MAX_CHUNK_SIZE),
        };

        let (token_sender, token_receiver) = oneshot::channel();
        let (chunk_sender, chunk_receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let store = self.clone();
        tokio::spawn(async move {
            let txn = match store.begin_read().await {
                Ok(txn) => txn,
                Err(error) => {
                    let _ = token_sender.send(Err(error));
                    return;
                }
            };
            let head = match read_head(&txn).await {
                Ok(head) => head,
                Err(error) => {
                    let _ = token_sender.send(Err(error));
                    return;
                }
            };
            if token_sender.send(Ok(store.token(head))).is_err() {
                return;
            }

            let reader = SnapshotReader {
                txn: &txn,
                organization_id,
                chunk_size,
                sender: &chunk_sender,
            };
            match reader.read_all().await {
                Ok(()) | Err(ReaderGone) => {}
            }
            if let Err(error) = txn.commit().await {
                tracing::warn!(%error, "closing the snapshot transaction failed");
            }
        });

        let token = token_receiver
            .await
            .map_err(|_| StoreError::corrupt("the snapshot task ended before reading the head"))??;
        Ok(Snapshot {
            token,
            chunks: Box::pin(tokio_stream::wrappers::ReceiverStream::new(chunk_receiver)),
        })
    }
}

struct SnapshotReader<'a> {
    txn: &'a DatabaseTransaction,
    organization_id: Option<OrganizationId>,
    chunk_size: usize,
    sender: &'a ChunkSender,
}

/// Sends a read's result: entities as a chunk, an error as the last item.
macro_rules! send_or_stop {
    ($reader:expr, $result:expr) => {
        match $result {
            Ok(entities) => $reader.send(entities).await?,
            Err(error) => {
                let _ = $reader.sender.send(Err(error)).await;
                return Err(ReaderGone);
            }
        }
    };
}

impl SnapshotReader<'_> {
    async fn send(&self, entities: Vec<Entity>) -> Result<(), ReaderGone> {
        if entities.is_empty() {
            return Ok(());
        }
        self.sender.send(Ok(entities)).await.map_err(|_| ReaderGone)
    }

    fn organization_text(&self) -> Option<String> {
        self.organization_id.map(|id| id.to_string())
    }

    async fn read_all(&self) -> Result<(), ReaderGone> {
        let types = match self.resource_types().await {
            Ok(types) => types,
            Err(error) => {
                let _ = self.sender.send(Err(error)).await;
                return Err(ReaderGone);
            }
        };
        for chunk in types.chunks(self.chunk_size) {
            self.send(chunk.to_vec()).await?;
        }
        self.users().await?;
        self.organizations().await?;
        self.members().await?;
        self.teams().await?;
        self.memberships().await?;
        self.resources().await?;
        self.grants().await?;
        self.invitations().await?;
        Ok(())
    }

    async fn resource_types(&self) -> Result<Vec<Entity>, StoreError> {
        let rows = resource_types::Entity::find()
            .order_by_asc(resource_types::Column::Name)
            .all(self.txn)
            .await?;
        rows.into_iter()
            .map(|row| {
                let definition: ResourceTypeDef = serde_json::from_str(&row.definition)?;
                Ok(Entity::ResourceType(definition))
            })
            .collect()
    }

    async fn users(&self) -> Result<(), ReaderGone> {
        let mut after: Option<String> = None;
        loop {
            let page = async {
                let ids: Vec<String> = match self.organization_text() {
                    Some(organization) => {
                        let mut select = members::Entity::find()
                            .select_only()
                            .column(members::Column::UserId)
                            .filter(members::Column::OrganizationId.eq(organization))
                            .order_by_asc(members::Column::UserId)
                            .limit(self.chunk_size as u64);
                        if let Some(after) = &after {
                            select = select.filter(members::Column::UserId.gt(after.clone()));
                        }
                        select.into_tuple().all(self.txn).await?
                    }
                    None => {
                        let mut select = users::Entity::find()
                            .select_only()
                            .column(users::Column::Id)
                            .order_by_asc(users::Column::Id)
                            .limit(self.chunk_size as u64);
                        if let Some(after) = &after {
                            select = select.filter(users::Column::Id.gt(after.clone()));
                        }
                        select.into_tuple().all(self.txn).await?
                    }
                };
                let rows = users::Entity::find()
                    .filter(users::Column::Id.is_in(ids.iter().cloned()))
                    .order_by_asc(users::Column::Id)
                    .all(self.txn)
                    .await?;
                let entities = rows
                    .into_iter()
                    .map(|row| rows::user(row).map(Entity::User))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok::<_, StoreError>((ids.last().cloned(), entities))
            };
            let (last, entities) = match page.await {
                Ok(page) => page,
                Err(error) => {
                    let _ = self.sender.send(Err(error)).await;
                    return Err(ReaderGone);
                }
            };
            let full = entities.len() >= self.chunk_size;
            self.send(entities).await?;
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn organizations(&self) -> Result<(), ReaderGone> {
        let mut after: Option<String> = None;
        loop {
            let mut select = organizations::Entity::find()
                .order_by_asc(organizations::Column::Id)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(organizations::Column::Id.eq(organization));
            }
            if let Some(after) = &after {
                select = select.filter(organizations::Column::Id.gt(after.clone()));
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| row.id.clone());
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, convert(rows, |row| rows::organization(row).map(Entity::Organization)));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn members(&self) -> Result<(), ReaderGone> {
        let mut after: Option<Vec<String>> = None;
        loop {
            let mut select = members::Entity::find()
                .order_by_asc(members::Column::OrganizationId)
                .order_by_asc(members::Column::UserId)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(members::Column::OrganizationId.eq(organization));
            }
            if let Some(after) = &after {
                let condition = match after_pair(after, members::Column::OrganizationId, members::Column::UserId) {
                    Ok(condition) => condition,
                    Err(error) => {
                        let _ = self.sender.send(Err(error)).await;
                        return Err(ReaderGone);
                    }
                };
                select = select.filter(condition);
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| vec![row.organization_id.clone(), row.user_id.clone()]);
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, convert(rows, |row| rows::member(row).map(Entity::Member)));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn teams(&self) -> Result<(), ReaderGone> {
        let mut after: Option<String> = None;
        loop {
            let mut select = teams::Entity::find().order_by_asc(teams::Column::Id).limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(teams::Column::OrganizationId.eq(organization));
            }
            if let Some(after) = &after {
                select = select.filter(teams::Column::Id.gt(after.clone()));
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| row.id.clone());
            let full = rows.len() >= self.chunk_size;
            let teams = lookup::teams_with_leaders(self.txn, rows).await;
            send_or_stop!(self, teams.map(|teams| teams.into_iter().map(Entity::Team).collect()));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn memberships(&self) -> Result<(), ReaderGone> {
        let mut after: Option<Vec<String>> = None;
        loop {
            let mut select = team_memberships::Entity::find()
                .order_by_asc(team_memberships::Column::TeamId)
                .order_by_asc(team_memberships::Column::UserId)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(team_memberships::Column::OrganizationId.eq(organization));
            }
            if let Some(after) = &after {
                let condition = match after_pair(after, team_memberships::Column::TeamId, team_memberships::Column::UserId) {
                    Ok(condition) => condition,
                    Err(error) => {
                        let _ = self.sender.send(Err(error)).await;
                        return Err(ReaderGone);
                    }
                };
                select = select.filter(condition);
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| vec![row.team_id.clone(), row.user_id.clone()]);
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, convert(rows, |row| rows::membership(row).map(Entity::Membership)));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn resources(&self) -> Result<(), ReaderGone> {
        let mut after: Option<String> = None;
        loop {
            let mut select = resources::Entity::find()
                .order_by_asc(resources::Column::Id)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(resources::Column::OrganizationId.eq(organization));
            }
            if let Some(after) = &after {
                select = select.filter(resources::Column::Id.gt(after.clone()));
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| row.id.clone());
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, convert(rows, |row| rows::resource(row).map(Entity::Resource)));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn grants(&self) -> Result<(), ReaderGone> {
        let mut after: Option<(String, String, String)> = None;
        loop {
            let mut select = grants::Entity::find()
                .order_by_asc(grants::Column::ResourceId)
                .order_by_asc(grants::Column::SubjectKind)
                .order_by_asc(grants::Column::SubjectId)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(grants::Column::OrganizationId.eq(organization));
            }
            if let Some((resource_id, kind, id)) = &after {
                select = select.filter(
                    Condition::any()
                        .add(grants::Column::ResourceId.gt(resource_id.clone()))
                        .add(
                            Condition::all()
                                .add(ColumnTrait::eq(&grants::Column::ResourceId, resource_id.clone()))
                                .add(
                                    Condition::any().add(grants::Column::SubjectKind.gt(kind.clone())).add(
                                        Condition::all()
                                            .add(ColumnTrait::eq(&grants::Column::SubjectKind, kind.clone()))
                                            .add(grants::Column::SubjectId.gt(id.clone())),
                                    ),
                                ),
                        ),
                );
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows
                .last()
                .map(|row| (row.resource_id.clone(), row.subject_kind.clone(), row.subject_id.clone()));
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, convert(rows, |row| rows::grant(row).map(Entity::Grant)));
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn invitations(&self) -> Result<(), ReaderGone> {
        let mut after: Option<String> = None;
        loop {
            let mut select = invitations::Entity::find()
                .order_by_asc(invitations::Column::Id)
                .limit(self.chunk_size as u64);
            if let Some(organization) = self.organization_text() {
                select = select.filter(invitations::Column::OrganizationId.eq(organization));
            }
            if let Some(after) = &after {
                select = select.filter(invitations::Column::Id.gt(after.clone()));
            }
            let rows = read_rows(self, select.all(self.txn).await).await?;
            let last = rows.last().map(|row| row.id.clone());
            let full = rows.len() >= self.chunk_size;
            send_or_stop!(self, self.invitations_with_teams(rows).await);
            match last {
                Some(last) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn invitations_with_teams(&self, rows: Vec<invitations::Model>) -> Result<Vec<Entity>, StoreError> {
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let team_rows = invitation_teams::Entity::find()
            .filter(invitation_teams::Column::InvitationId.is_in(ids))
            .order_by_asc(invitation_teams::Column::InvitationId)
            .order_by_asc(invitation_teams::Column::Position)
            .all(self.txn)
            .await?;
        let mut teams_by_invitation: HashMap<String, Vec<TeamId>> = HashMap::new();
        for row in team_rows {
            teams_by_invitation
                .entry(row.invitation_id)
                .or_default()
                .push(rows::parse_id(&row.team_id)?);
        }
        rows.into_iter()
            .map(|row| {
                let team_ids = teams_by_invitation.remove(&row.id).unwrap_or_default();
                rows::invitation(row, team_ids).map(Entity::Invitation)
            })
            .collect()
    }
}

/// Passes rows through, or sends the database error as the last item.
async fn read_rows<T>(reader: &SnapshotReader<'_>, result: Result<Vec<T>, sea_orm::DbErr>) -> Result<Vec<T>, ReaderGone> {
    match result {
        Ok(rows) => Ok(rows),
        Err(error) => {
            let _ = reader.sender.send(Err(error.into())).await;
            Err(ReaderGone)
        }
    }
}

fn convert<T>(rows: Vec<T>, to_entity: impl Fn(T) -> Result<Entity, StoreError>) -> Result<Vec<Entity>, StoreError> {
    rows.into_iter().map(to_entity).collect()
}
