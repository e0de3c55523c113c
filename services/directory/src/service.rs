//! The `DirectoryService` gRPC handlers. Each one reads the call context,
//! converts the message into a domain command or query, checks that the
//! caller may make the call ([`crate::authorization`]), calls the store and
//! converts the result. The conversions live in [`crate::convert`] and the
//! error mapping in [`crate::error`].

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use workteams_domain::command::MemberSpec;
use workteams_proto::directory::v1 as proto;
use workteams_proto::directory::v1::directory_service_server::DirectoryService;
use workteams_storage::Store;

use crate::authorization::{Access, Ids};
use crate::authentication::CallGate;
use crate::context::CallContext;
use crate::convert::entities::{invitation_at, membership_to_proto};
use crate::convert::{IntoProto, RequestFacts, TryIntoDomain};
use crate::error::ApiError;
use crate::stream::{self, SnapshotStream, WatchStream};

type RpcResult<T> = Result<Response<T>, Status>;

/// Settings of the streaming RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Idle time after which a Watch stream sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// Maximum encoded size of one streamed message, in bytes.
    pub max_message_size: usize,
}

/// The directory service over one store.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
    streams: StreamSettings,
    /// Turns true when the server shuts down, which ends Watch streams.
    shutdown: watch::Receiver<bool>,
    /// Authenticates and rate-limits every call before its handler runs.
    gate: CallGate,
}

impl Directory {
    pub fn new(
        store: Store,
        streams: StreamSettings,
        shutdown: watch::Receiver<bool>,
        gate: CallGate,
    ) -> Self {
        Self {
            store,
            streams,
            shutdown,
            gate,
        }
    }

    /// Reads the call context, authenticates the caller and takes the
    /// message out of the request.
    fn begin<T>(
        &self,
        method: &'static str,
        request: Request<T>,
    ) -> Result<(CallContext, T), Status> {
        let mut call = match CallContext::from_metadata(method, request.metadata()) {
            Ok(call) => call,
            Err(error) => {
                let call = CallContext::fallback(method);
                return Err(finish_error(&call, ApiError::from(error)));
            }
        };

        if let Err(error) = self.gate.admit(&mut call, request.metadata()) {
            return Err(finish_error(&call, error));
        }
        Ok((call, request.into_inner()))
    }

    fn facts(&self, call: &CallContext) -> RequestFacts {
        RequestFacts {
            now: Utc::now(),
            actor_user_id: call.actor_user_id(),
            epoch: self.store.epoch(),
        }
    }

    /// Runs a handler body in the call's span and builds the response or
    /// the status, both carrying the request id.
    async fn run<T>(
        &self,
        call: &CallContext,
        body: impl Future<Output = Result<T, ApiError>>,
    ) -> RpcResult<T> {
        match body.instrument(call.span.clone()).await {
            Ok(message) => {
                call.span.in_scope(|| tracing::debug!("request completed"));
                let mut response = Response::new(message);
                call.echo_request_id(response.metadata_mut());
                Ok(response)
            }
            Err(error) => Err(finish_error(call, error)),
        }
    }
}

/// Maps an error to its status, logs it in the call's span and sets the
/// request id on the status metadata. The log names the field but not the
/// message, which may repeat a submitted e-mail address.
fn finish_error(call: &CallContext, error: ApiError) -> Status {
    let field = error.field().map(str::to_owned);
    let mut status = error.into_status(&call.request_id);
    call.span.in_scope(|| {
        tracing::info!(code = ?status.code(), field, "request failed");
    });
    call.echo_request_id(status.metadata_mut());
    status
}

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn create_organization(
        &self,
        request: Request<proto::CreateOrganizationRequest>,
    ) -> RpcResult<proto::CreateOrganizationResponse> {
        let (call, mut message) = self.begin("CreateOrganization", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_admin("creating an organization")?;
            let written = self
                .store
                .create_organization(&call.store_context(idempotency), command)
                .await?;
            call.record("organization_id", &written.value.id);
            Ok(proto::CreateOrganizationResponse {
                organization: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_organization(
        &self,
        request: Request<proto::GetOrganizationRequest>,
    ) -> RpcResult<proto::GetOrganizationResponse> {
        let (call, message) = self.begin("GetOrganization", request)?;
        self.run(&call, async {
            let lookup = message.try_into_domain(&self.facts(&call))?;
            let access = Access::new(&self.store, &call);
            let organization =
                access.hide_not_found("id", self.store.get_organization(&lookup).await)?;
            access.read_organization_record(&organization).await?;
            Ok(proto::GetOrganizationResponse {
                organization: Some(organization.into_proto()),
            })
        })
        .await
    }

    async fn update_organization(
        &self,
        request: Request<proto::UpdateOrganizationRequest>,
    ) -> RpcResult<proto::UpdateOrganizationResponse> {
        let (call, mut message) = self.begin("UpdateOrganization", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .manage(&Ids::organization("id", command.id))
                .await?;
            call.record("organization_id", &command.id);
            let written = self
                .store
                .update_organization(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::UpdateOrganizationResponse {
                organization: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_organizations(
        &self,
        request: Request<proto::ListOrganizationsRequest>,
    ) -> RpcResult<proto::ListOrganizationsResponse> {
        let (call, message) = self.begin("ListOrganizations", request)?;
        self.run(&call, async {
            let page = message.try_into_domain(&self.facts(&call))?;
            let page = self.store.list_organizations(&page).await?;
            let page = Access::new(&self.store, &call)
                .visible_organizations(page)
                .await?;
            Ok(proto::ListOrganizationsResponse {
                organizations: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn create_user(
        &self,
        request: Request<proto::CreateUserRequest>,
    ) -> RpcResult<proto::CreateUserResponse> {
        let (call, mut message) = self.begin("CreateUser", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_admin("creating a user")?;
            let written = self
                .store
                .create_user(&call.store_context(idempotency), command)
                .await?;
            call.record("user_id", &written.value.id);
            Ok(proto::CreateUserResponse {
                user: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<proto::GetUserRequest>,
    ) -> RpcResult<proto::GetUserResponse> {
        let (call, message) = self.begin("GetUser", request)?;
        self.run(&call, async {
            let lookup = message.try_into_domain(&self.facts(&call))?;
            let access = Access::new(&self.store, &call);
            let user = access.hide_not_found("id", self.store.get_user(&lookup).await)?;
            access.read_user(&user).await?;
            Ok(proto::GetUserResponse {
                user: Some(user.into_proto()),
            })
        })
        .await
    }

    async fn update_user(
        &self,
        request: Request<proto::UpdateUserRequest>,
    ) -> RpcResult<proto::UpdateUserResponse> {
        let (call, mut message) = self.begin("UpdateUser", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_admin(
                "changing a user, who may belong to several organizations,",
            )?;
            call.record("user_id", &command.id);
            let written = self
                .store
                .update_user(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::UpdateUserResponse {
                user: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<proto::ListUsersRequest>,
    ) -> RpcResult<proto::ListUsersResponse> {
        let (call, message) = self.begin("ListUsers", request)?;
        self.run(&call, async {
            let page = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_read("listing every user")?;
            let page = self.store.list_users(&page).await?;
            Ok(proto::ListUsersResponse {
                users: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn batch_create_users(
        &self,
        request: Request<proto::BatchCreateUsersRequest>,
    ) -> RpcResult<proto::BatchCreateUsersResponse> {
        let (call, mut message) = self.begin("BatchCreateUsers", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_admin("creating users")?;
            let written = self
                .store
                .batch_create_users(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::BatchCreateUsersResponse {
                users: written.value.into_proto(),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn add_organization_member(
        &self,
        request: Request<proto::AddOrganizationMemberRequest>,
    ) -> RpcResult<proto::AddOrganizationMemberResponse> {
        let (call, mut message) = self.begin("AddOrganizationMember", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .add_members(
                    command.organization_id,
                    &[("role".to_owned(), &command.member)],
                )
                .await?;
            call.record("organization_id", &command.organization_id);
            call.record("user_id", &command.member.user_id);
            let written = self
                .store
                .add_member(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::AddOrganizationMemberResponse {
                member: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_organization_member(
        &self,
        request: Request<proto::GetOrganizationMemberRequest>,
    ) -> RpcResult<proto::GetOrganizationMemberResponse> {
        let (call, message) = self.begin("GetOrganizationMember", request)?;
        self.run(&call, async {
            let key = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read_member(key.organization_id, key.user_id)
                .await?;
            call.record("organization_id", &key.organization_id);
            call.record("user_id", &key.user_id);
            let member = self
                .store
                .get_member(key.organization_id, key.user_id)
                .await?;
            Ok(proto::GetOrganizationMemberResponse {
                member: Some(member.into_proto()),
            })
        })
        .await
    }

    async fn update_organization_member(
        &self,
        request: Request<proto::UpdateOrganizationMemberRequest>,
    ) -> RpcResult<proto::UpdateOrganizationMemberResponse> {
        let (call, mut message) = self.begin("UpdateOrganizationMember", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .change_member(command.organization_id, command.user_id, command.role)
                .await?;
            call.record("organization_id", &command.organization_id);
            call.record("user_id", &command.user_id);
            let written = self
                .store
                .update_member(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::UpdateOrganizationMemberResponse {
                member: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn remove_organization_member(
        &self,
        request: Request<proto::RemoveOrganizationMemberRequest>,
    ) -> RpcResult<proto::RemoveOrganizationMemberResponse> {
        let (call, mut message) = self.begin("RemoveOrganizationMember", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let removal = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .change_member(removal.organization_id, removal.user_id, None)
                .await?;
            call.record("organization_id", &removal.organization_id);
            call.record("user_id", &removal.user_id);
            let context = call.store_context(idempotency);
            let written = self
                .store
                .remove_member(&context, removal.organization_id, removal.user_id)
                .await?;
            Ok(proto::RemoveOrganizationMemberResponse {
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_organization_members(
        &self,
        request: Request<proto::ListOrganizationMembersRequest>,
    ) -> RpcResult<proto::ListOrganizationMembersResponse> {
        let (call, message) = self.begin("ListOrganizationMembers", request)?;
        self.run(&call, async {
            let (organization_id, page) = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read(&Ids::organization("organization_id", organization_id))
                .await?;
            call.record("organization_id", &organization_id);
            let page = self.store.list_members(organization_id, &page).await?;
            Ok(proto::ListOrganizationMembersResponse {
                members: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn batch_add_organization_members(
        &self,
        request: Request<proto::BatchAddOrganizationMembersRequest>,
    ) -> RpcResult<proto::BatchAddOrganizationMembersResponse> {
        let (call, mut message) = self.begin("BatchAddOrganizationMembers", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            let specs: Vec<(String, &MemberSpec)> = command
                .members
                .iter()
                .enumerate()
                .map(|(index, spec)| (format!("members[{index}].role"), spec))
                .collect();
            Access::new(&self.store, &call)
                .add_members(command.organization_id, &specs)
                .await?;
            call.record("organization_id", &command.organization_id);
            let written = self
                .store
                .batch_add_members(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::BatchAddOrganizationMembersResponse {
                members: written.value.into_proto(),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn create_team(
        &self,
        request: Request<proto::CreateTeamRequest>,
    ) -> RpcResult<proto::CreateTeamResponse> {
        let (call, mut message) = self.begin("CreateTeam", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .create_team(&command)
                .await?;
            call.record("organization_id", &command.organization_id);
            let written = self
                .store
                .create_team(&call.store_context(idempotency), command)
                .await?;
            call.record("team_id", &written.value.id);
            Ok(proto::CreateTeamResponse {
                team: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_team(
        &self,
        request: Request<proto::GetTeamRequest>,
    ) -> RpcResult<proto::GetTeamResponse> {
        let (call, message) = self.begin("GetTeam", request)?;
        self.run(&call, async {
            let team_id = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).read_team(team_id).await?;
            call.record("team_id", &team_id);
            let team = self.store.get_team(team_id).await?;
            Ok(proto::GetTeamResponse {
                team: Some(team.into_proto()),
            })
        })
        .await
    }

    async fn list_teams(
        &self,
        request: Request<proto::ListTeamsRequest>,
    ) -> RpcResult<proto::ListTeamsResponse> {
        let (call, message) = self.begin("ListTeams", request)?;
        self.run(&call, async {
            let (filter, page) = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", filter.organization_id)
                .and_optional_team("parent_team_id", filter.parent_team_id);
            Access::new(&self.store, &call).read(&ids).await?;
            call.record("organization_id", &filter.organization_id);
            let page = self.store.list_teams(&filter, &page).await?;
            Ok(proto::ListTeamsResponse {
                teams: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn update_team(
        &self,
        request: Request<proto::UpdateTeamRequest>,
    ) -> RpcResult<proto::UpdateTeamResponse> {
        let (call, mut message) = self.begin("UpdateTeam", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .manage(&Ids::team("id", command.id))
                .await?;
            call.record("team_id", &command.id);
            let written = self
                .store
                .update_team(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::UpdateTeamResponse {
                team: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn delete_team(
        &self,
        request: Request<proto::DeleteTeamRequest>,
    ) -> RpcResult<proto::DeleteTeamResponse> {
        let (call, mut message) = self.begin("DeleteTeam", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let deletion = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .manage(&Ids::team("id", deletion.id))
                .await?;
            call.record("team_id", &deletion.id);
            let context = call.store_context(idempotency);
            let written = self
                .store
                .delete_team(&context, deletion.id, deletion.etag)
                .await?;
            Ok(proto::DeleteTeamResponse {
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn set_team_leaders(
        &self,
        request: Request<proto::SetTeamLeadersRequest>,
    ) -> RpcResult<proto::SetTeamLeadersResponse> {
        let (call, mut message) = self.begin("SetTeamLeaders", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .manage(&Ids::team("team_id", command.team_id))
                .await?;
            call.record("team_id", &command.team_id);
            let written = self
                .store
                .set_team_leaders(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::SetTeamLeadersResponse {
                team: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn set_team_parent(
        &self,
        request: Request<proto::SetTeamParentRequest>,
    ) -> RpcResult<proto::SetTeamParentResponse> {
        let (call, mut message) = self.begin("SetTeamParent", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .set_team_parent(command.team_id, command.parent_team_id)
                .await?;
            call.record("team_id", &command.team_id);
            let written = self
                .store
                .set_team_parent(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::SetTeamParentResponse {
                team: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn set_team_role(
        &self,
        request: Request<proto::SetTeamRoleRequest>,
    ) -> RpcResult<proto::SetTeamRoleResponse> {
        let (call, mut message) = self.begin("SetTeamRole", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .set_team_role(command.team_id, command.role)
                .await?;
            call.record("team_id", &command.team_id);
            let written = self
                .store
                .set_team_role(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::SetTeamRoleResponse {
                team: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn add_team_members(
        &self,
        request: Request<proto::AddTeamMembersRequest>,
    ) -> RpcResult<proto::AddTeamMembersResponse> {
        let (call, mut message) = self.begin("AddTeamMembers", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .change_team_members(command.team_id)
                .await?;
            call.record("team_id", &command.team_id);
            let written = self
                .store
                .add_team_members(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::AddTeamMembersResponse {
                memberships: written.value.into_proto(),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn remove_team_members(
        &self,
        request: Request<proto::RemoveTeamMembersRequest>,
    ) -> RpcResult<proto::RemoveTeamMembersResponse> {
        let (call, mut message) = self.begin("RemoveTeamMembers", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .change_team_members(command.team_id)
                .await?;
            call.record("team_id", &command.team_id);
            let written = self
                .store
                .remove_team_members(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::RemoveTeamMembersResponse {
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_team_members(
        &self,
        request: Request<proto::ListTeamMembersRequest>,
    ) -> RpcResult<proto::ListTeamMembersResponse> {
        let (call, message) = self.begin("ListTeamMembers", request)?;
        self.run(&call, async {
            let (query, page) = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read_team_members(&query)
                .await?;
            call.record("team_id", &query.team_id);
            let page = self.store.list_team_members(&query, &page).await?;
            let memberships = page
                .items
                .into_iter()
                .map(|entry| {
                    membership_to_proto(entry.membership, Some(entry.user), entry.via_team_id)
                })
                .collect();
            Ok(proto::ListTeamMembersResponse {
                memberships,
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn list_user_teams(
        &self,
        request: Request<proto::ListUserTeamsRequest>,
    ) -> RpcResult<proto::ListUserTeamsResponse> {
        let (call, message) = self.begin("ListUserTeams", request)?;
        self.run(&call, async {
            let (query, page) = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read_user_teams(&query)
                .await?;
            call.record("user_id", &query.user_id);
            let page = self.store.list_user_teams(&query, &page).await?;
            let (teams, memberships) = page
                .items
                .into_iter()
                .map(|entry| (entry.team.into_proto(), entry.membership.into_proto()))
                .unzip();
            Ok(proto::ListUserTeamsResponse {
                teams,
                memberships,
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn list_resource_types(
        &self,
        request: Request<proto::ListResourceTypesRequest>,
    ) -> RpcResult<proto::ListResourceTypesResponse> {
        let (call, message) = self.begin("ListResourceTypes", request)?;
        self.run(&call, async {
            let proto::ListResourceTypesRequest {} = message;
            Ok(proto::ListResourceTypesResponse {
                resource_types: self.store.list_resource_types().into_proto(),
            })
        })
        .await
    }

    async fn create_resource(
        &self,
        request: Request<proto::CreateResourceRequest>,
    ) -> RpcResult<proto::CreateResourceResponse> {
        let (call, mut message) = self.begin("CreateResource", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let creation = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", creation.organization_id)
                .and_resource_parents("resource", [&creation.resource]);
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("organization_id", &creation.organization_id);
            let context = call.store_context(idempotency);
            let written = self
                .store
                .create_resource(&context, creation.organization_id, creation.resource)
                .await?;
            call.record("resource_id", &written.value.id);
            Ok(proto::CreateResourceResponse {
                resource: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn batch_create_resources(
        &self,
        request: Request<proto::BatchCreateResourcesRequest>,
    ) -> RpcResult<proto::BatchCreateResourcesResponse> {
        let (call, mut message) = self.begin("BatchCreateResources", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", command.organization_id)
                .and_resource_parents("resources", &command.resources);
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("organization_id", &command.organization_id);
            let written = self
                .store
                .batch_create_resources(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::BatchCreateResourcesResponse {
                resources: written.value.into_proto(),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_resource(
        &self,
        request: Request<proto::GetResourceRequest>,
    ) -> RpcResult<proto::GetResourceResponse> {
        let (call, message) = self.begin("GetResource", request)?;
        self.run(&call, async {
            let lookup = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read(&Ids::of_resource_lookup(&lookup))
                .await?;
            let resource = self.store.get_resource(&lookup).await?;
            call.record("resource_id", &resource.id);
            Ok(proto::GetResourceResponse {
                resource: Some(resource.into_proto()),
            })
        })
        .await
    }

    async fn update_resource(
        &self,
        request: Request<proto::UpdateResourceRequest>,
    ) -> RpcResult<proto::UpdateResourceResponse> {
        let (call, mut message) = self.begin("UpdateResource", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::resource("id", command.id)
                .and_optional_resource("parent_resource_id", command.parent_resource_id.flatten());
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("resource_id", &command.id);
            let written = self
                .store
                .update_resource(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::UpdateResourceResponse {
                resource: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn delete_resource(
        &self,
        request: Request<proto::DeleteResourceRequest>,
    ) -> RpcResult<proto::DeleteResourceResponse> {
        let (call, mut message) = self.begin("DeleteResource", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let deletion = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .manage(&Ids::resource("id", deletion.id))
                .await?;
            call.record("resource_id", &deletion.id);
            let context = call.store_context(idempotency);
            let written = self
                .store
                .delete_resource(&context, deletion.id, deletion.etag)
                .await?;
            Ok(proto::DeleteResourceResponse {
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_resources(
        &self,
        request: Request<proto::ListResourcesRequest>,
    ) -> RpcResult<proto::ListResourcesResponse> {
        let (call, message) = self.begin("ListResources", request)?;
        self.run(&call, async {
            let (filter, page) = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", filter.organization_id)
                .and_optional_resource("parent_resource_id", filter.parent_resource_id);
            Access::new(&self.store, &call).read(&ids).await?;
            call.record("organization_id", &filter.organization_id);
            let page = self.store.list_resources(&filter, &page).await?;
            Ok(proto::ListResourcesResponse {
                resources: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn grant_access(
        &self,
        request: Request<proto::GrantAccessRequest>,
    ) -> RpcResult<proto::GrantAccessResponse> {
        let (call, mut message) = self.begin("GrantAccess", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::resource("resource_id", command.resource_id)
                .and_subject("subject.team_id", command.subject);
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("resource_id", &command.resource_id);
            let written = self
                .store
                .grant_access(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::GrantAccessResponse {
                grant: Some(written.value.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn revoke_access(
        &self,
        request: Request<proto::RevokeAccessRequest>,
    ) -> RpcResult<proto::RevokeAccessResponse> {
        let (call, mut message) = self.begin("RevokeAccess", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let revocation = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::resource("resource_id", revocation.resource_id)
                .and_subject("subject.team_id", revocation.subject);
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("resource_id", &revocation.resource_id);
            let context = call.store_context(idempotency);
            let written = self
                .store
                .revoke_access(&context, revocation.resource_id, revocation.subject)
                .await?;
            Ok(proto::RevokeAccessResponse {
                revoked: written.value,
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn batch_set_grants(
        &self,
        request: Request<proto::BatchSetGrantsRequest>,
    ) -> RpcResult<proto::BatchSetGrantsResponse> {
        let (call, mut message) = self.begin("BatchSetGrants", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", command.organization_id)
                .and_grant_changes(&command.changes);
            Access::new(&self.store, &call).manage(&ids).await?;
            call.record("organization_id", &command.organization_id);
            let written = self
                .store
                .batch_set_grants(&call.store_context(idempotency), command)
                .await?;
            Ok(proto::BatchSetGrantsResponse {
                // Both counts are at most 10,000, the batch limit.
                set_count: i32::try_from(written.value.set_count).unwrap_or(i32::MAX),
                revoked_count: i32::try_from(written.value.revoked_count).unwrap_or(i32::MAX),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_grants(
        &self,
        request: Request<proto::ListGrantsRequest>,
    ) -> RpcResult<proto::ListGrantsResponse> {
        let (call, message) = self.begin("ListGrants", request)?;
        self.run(&call, async {
            let (filter, page) = message.try_into_domain(&self.facts(&call))?;
            let ids = Ids::organization("organization_id", filter.organization_id)
                .and_optional_resource("resource_id", filter.resource_id)
                .and_optional_subject("subject.team_id", filter.subject);
            Access::new(&self.store, &call).read(&ids).await?;
            call.record("organization_id", &filter.organization_id);
            let page = self.store.list_grants(&filter, &page).await?;
            Ok(proto::ListGrantsResponse {
                grants: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn create_invitation(
        &self,
        request: Request<proto::CreateInvitationRequest>,
    ) -> RpcResult<proto::CreateInvitationResponse> {
        let (call, mut message) = self.begin("CreateInvitation", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .create_invitation(command.organization_id, &command.team_ids)
                .await?;
            call.record("organization_id", &command.organization_id);
            let written = self
                .store
                .create_invitation(&call.store_context(idempotency), command)
                .await?;
            call.record("invitation_id", &written.value.id);
            Ok(proto::CreateInvitationResponse {
                invitation: Some(invitation_at(written.value, Utc::now())),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn get_invitation(
        &self,
        request: Request<proto::GetInvitationRequest>,
    ) -> RpcResult<proto::GetInvitationResponse> {
        let (call, message) = self.begin("GetInvitation", request)?;
        self.run(&call, async {
            let invitation_id = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read_invitation(invitation_id)
                .await?;
            call.record("invitation_id", &invitation_id);
            let invitation = self.store.get_invitation(invitation_id).await?;
            Ok(proto::GetInvitationResponse {
                invitation: Some(invitation_at(invitation, Utc::now())),
            })
        })
        .await
    }

    async fn accept_invitation(
        &self,
        request: Request<proto::AcceptInvitationRequest>,
    ) -> RpcResult<proto::AcceptInvitationResponse> {
        let (call, mut message) = self.begin("AcceptInvitation", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let command = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .accept_invitation(command.id)
                .await?;
            call.record("invitation_id", &command.id);
            let written = self
                .store
                .accept_invitation(&call.store_context(idempotency), command)
                .await?;
            let accepted = written.value;
            Ok(proto::AcceptInvitationResponse {
                invitation: Some(invitation_at(accepted.invitation, Utc::now())),
                member: Some(accepted.member.into_proto()),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn revoke_invitation(
        &self,
        request: Request<proto::RevokeInvitationRequest>,
    ) -> RpcResult<proto::RevokeInvitationResponse> {
        let (call, mut message) = self.begin("RevokeInvitation", request)?;
        self.run(&call, async {
            let idempotency = call.take_idempotency(&mut message)?;
            let invitation_id = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .revoke_invitation(invitation_id)
                .await?;
            call.record("invitation_id", &invitation_id);
            let written = self
                .store
                .revoke_invitation(&call.store_context(idempotency), invitation_id)
                .await?;
            Ok(proto::RevokeInvitationResponse {
                invitation: Some(invitation_at(written.value, Utc::now())),
                consistency_token: written.token.encode(),
            })
        })
        .await
    }

    async fn list_invitations(
        &self,
        request: Request<proto::ListInvitationsRequest>,
    ) -> RpcResult<proto::ListInvitationsResponse> {
        let (call, message) = self.begin("ListInvitations", request)?;
        self.run(&call, async {
            let (filter, page) = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read(&Ids::organization(
                    "organization_id",
                    filter.organization_id,
                ))
                .await?;
            call.record("organization_id", &filter.organization_id);
            let page = self.store.list_invitations(&filter, &page).await?;
            let now = Utc::now();
            Ok(proto::ListInvitationsResponse {
                invitations: page
                    .items
                    .into_iter()
                    .map(|invitation| invitation_at(invitation, now))
                    .collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> RpcResult<proto::ListAuditEventsResponse> {
        let (call, message) = self.begin("ListAuditEvents", request)?;
        self.run(&call, async {
            let (filter, page) = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call)
                .read(&Ids::organization(
                    "organization_id",
                    filter.organization_id,
                ))
                .await?;
            call.record("organization_id", &filter.organization_id);
            let page = self.store.list_audit_events(&filter, &page).await?;
            Ok(proto::ListAuditEventsResponse {
                audit_events: page.items.into_proto(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn get_revision(
        &self,
        request: Request<proto::GetRevisionRequest>,
    ) -> RpcResult<proto::GetRevisionResponse> {
        let (call, message) = self.begin("GetRevision", request)?;
        self.run(&call, async {
            let proto::GetRevisionRequest {} = message;
            let token = self.store.current_token().await?;
            Ok(proto::GetRevisionResponse {
                consistency_token: token.encode(),
                revision: token.revision.0,
            })
        })
        .await
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<proto::WatchRequest>) -> RpcResult<Self::WatchStream> {
        let (call, message) = self.begin("Watch", request)?;
        self.run(&call, async {
            let start = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_read("watching the change stream")?;
            if let Some(organization_id) = &start.organization_id {
                call.record("organization_id", organization_id);
            }
            let from = match start.from {
                Some(token) => token,
                None => self.store.current_token().await?,
            };
            stream::check_watch_start(&self.store, from, start.organization_id).await?;
            Ok(stream::watch(
                self.store.clone(),
                from,
                start.organization_id,
                self.streams,
                self.shutdown.clone(),
                call.clone(),
            ))
        })
        .await
    }

    type ExportSnapshotStream = SnapshotStream;

    async fn export_snapshot(
        &self,
        request: Request<proto::ExportSnapshotRequest>,
    ) -> RpcResult<Self::ExportSnapshotStream> {
        let (call, message) = self.begin("ExportSnapshot", request)?;
        self.run(&call, async {
            let organization_id = message.try_into_domain(&self.facts(&call))?;
            Access::new(&self.store, &call).require_global_read("exporting a snapshot")?;
            if let Some(organization_id) = &organization_id {
                call.record("organization_id", organization_id);
            }
            let snapshot = self
                .store
                .export_snapshot(organization_id, stream::SNAPSHOT_CHUNK_ENTITIES)
                .await?;
            Ok(stream::snapshot(snapshot, self.streams, call.clone()))
        })
        .await
    }
}
