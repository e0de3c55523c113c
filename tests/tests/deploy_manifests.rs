//! Checks the deployment material under `deploy/` against the two services.
//! Every YAML file must parse, and every port must match the address its
//! service listens on. Environment variables must be ones the services read,
//! and images must be Dockerfile targets. Kustomize paths must exist. Both
//! services must start and report SERVING with the example settings, where
//! the Kubernetes example's JWKS URL is replaced by a local HS256 secret.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde_yaml::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use workteams_auth::{KeySource, ServiceAccounts, TokenClaims, mint_hs256};
use workteams_authz::AuthzConfig;
use workteams_directory::{Authentication, DirectoryArgs};
use workteams_domain::Scope;
use workteams_proto::authz::v1::authorization_service_server::SERVICE_NAME as AUTHZ_SERVICE_NAME;
use workteams_proto::directory::v1::directory_service_server::SERVICE_NAME as DIRECTORY_SERVICE_NAME;
use workteams_storage::testing::TestDatabase;

const DIRECTORY_CONFIG_SOURCE: &str = include_str!("../../services/directory/src/config.rs");
const AUTHZ_CONFIG_SOURCE: &str = include_str!("../../services/authz/src/config.rs");
const TELEMETRY_SOURCE: &str = include_str!("../../crates/telemetry/src/subscriber.rs");
const DOCKERFILE: &str = include_str!("../../deploy/Dockerfile");

/// Value recorded for a variable whose value comes from a Secret.
const SECRET_PLACEHOLDER: &str = "<from a Secret>";

/// How long the start tests wait for a service to report SERVING. Loading an
/// empty directory takes well under a second.
const SERVING_WAIT: Duration = Duration::from_secs(30);

/// Service account the Kubernetes example gives the sidecars.
const SIDECAR_ACCOUNT: &str = "workteams-authz";

/// HS256 secret that replaces the example's identity provider when the
/// services start in a test. It is longer than the 32-byte minimum.
const TEST_TOKEN_SECRET: &str = "deploy-manifests-test-secret-not-for-production";

// ---------------------------------------------------------------------------
// The services
// ---------------------------------------------------------------------------

/// The two services, each built as one target of the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Service {
    Directory,
    Authz,
}

impl Service {
    const ALL: [Self; 2] = [Self::Directory, Self::Authz];

    fn dockerfile_target(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Authz => "authz",
        }
    }

    fn image_name(self) -> String {
        format!("workteams/{}", self.dockerfile_target())
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Directory => "workteams-directory",
            Self::Authz => "workteams-authz",
        }
    }

    fn listen_variable(self) -> &'static str {
        match self {
            Self::Directory => "WORKTEAMS_DIRECTORY_LISTEN_ADDRESS",
            Self::Authz => "WORKTEAMS_AUTHZ_LISTEN",
        }
    }

    fn built_in_listen_address(self) -> SocketAddr {
        let text = match self {
            Self::Directory => workteams_directory::config::DEFAULT_LISTEN_ADDRESS,
            Self::Authz => workteams_authz::config::DEFAULT_LISTEN,
        };
        text.parse().unwrap()
    }

    fn grpc_service_name(self) -> &'static str {
        match self {
            Self::Directory => DIRECTORY_SERVICE_NAME,
            Self::Authz => AUTHZ_SERVICE_NAME,
        }
    }

    /// Environment variables the service reads: the `env = "..."` names of
    /// its flags, plus the logging and OpenTelemetry variables of the
    /// telemetry crate.
    fn known_variables(self) -> BTreeSet<String> {
        let source = match self {
            Self::Directory => DIRECTORY_CONFIG_SOURCE,
            Self::Authz => AUTHZ_CONFIG_SOURCE,
        };
        let mut names = flag_variables(source);
        names.extend(telemetry_variables());
        names
    }

    /// Maps an image reference such as `workteams/authz:0.1.0` to its service.
    fn from_image(image: &str) -> Option<Self> {
        let name = image_without_tag(image);
        Self::ALL
            .into_iter()
            .find(|service| service.image_name() == name)
    }

    /// Returns the address the service listens on with `environment` on top
    /// of the image's own `ENV` lines.
    fn listen_address(self, environment: &BTreeMap<String, String>) -> SocketAddr {
        match environment.get(self.listen_variable()) {
            Some(text) => text.parse().unwrap_or_else(|error| {
                panic!(
                    "{}={text:?} is not an address: {error}",
                    self.listen_variable()
                )
            }),
            None => self.built_in_listen_address(),
        }
    }
}

fn image_without_tag(image: &str) -> &str {
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].find(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

/// Collects the quoted names of `env = "..."` clap attributes.
fn flag_variables(source: &str) -> BTreeSet<String> {
    let marker = "env = \"";
    source
        .match_indices(marker)
        .map(|(start, _)| {
            let rest = &source[start + marker.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// Collects the names listed in the telemetry crate's `READ_VARIABLES`.
fn telemetry_variables() -> BTreeSet<String> {
    let start = TELEMETRY_SOURCE
        .find("READ_VARIABLES")
        .expect("READ_VARIABLES in the telemetry crate");
    let list = &TELEMETRY_SOURCE[start..];
    let list = &list[list.find('[').unwrap()..];
    let list = &list[..list.find("];").unwrap()];
    let list = &list[list.find('=').unwrap()..];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------
// The Dockerfile
// ---------------------------------------------------------------------------

/// One `FROM` stage of the Dockerfile, with the instructions the checks use.
#[derive(Debug, Default)]
struct DockerStage {
    name: String,
    base_image: String,
    environment: BTreeMap<String, String>,
    exposed_ports: Vec<u16>,
    entrypoint: Vec<String>,
    /// Destination paths of its `COPY` instructions.
    copied_paths: Vec<String>,
    user: Option<String>,
}

fn dockerfile_stages() -> Vec<DockerStage> {
    let mut stages: Vec<DockerStage> = Vec::new();

    for line in dockerfile_instructions() {
        let (instruction, arguments) = line
            .split_once(char::is_whitespace)
            .unwrap_or((line.as_str(), ""));
        let arguments = arguments.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = arguments.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, keyword, name] if keyword.eq_ignore_ascii_case("as") => (*name).to_owned(),
                    _ => String::new(),
                };
                stages.push(DockerStage {
                    name,
                    base_image: words[0].to_owned(),
                    ..DockerStage::default()
                });
            }
            "ENV" => {
                let stage = stages.last_mut().expect("ENV before FROM");
                for pair in arguments.split_whitespace() {
                    let (name, value) = pair.split_once('=').expect("ENV in NAME=VALUE form");
                    stage
                        .environment
                        .insert(name.to_owned(), value.trim_matches('"').to_owned());
                }
            }
            "EXPOSE" => {
                let stage = stages.last_mut().expect("EXPOSE before FROM");
                for port in arguments.split_whitespace() {
                    let port = port.trim_end_matches("/tcp");
                    stage
                        .exposed_ports
                        .push(port.parse().expect("EXPOSE port number"));
                }
            }
            "ENTRYPOINT" => {
                let stage = stages.last_mut().expect("ENTRYPOINT before FROM");
                stage.entrypoint =
                    serde_yaml::from_str(arguments).expect("ENTRYPOINT in exec (JSON) form");
            }
            "COPY" => {
                let stage = stages.last_mut().expect("COPY before FROM");
                let destination = arguments
                    .split_whitespace()
                    .last()
                    .expect("COPY destination");
                stage.copied_paths.push(destination.to_owned());
            }
            "USER" => {
                let stage = stages.last_mut().expect("USER before FROM");
                stage.user = Some(arguments.to_owned());
            }
            _ => {}
        }
    }
    stages
}

/// Returns the Dockerfile's instructions with continuation lines joined and
/// comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();

    for line in DOCKERFILE.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => {
                current.push_str(continued);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

fn runtime_stage(service: Service) -> DockerStage {
    dockerfile_stages()
        .into_iter()
        .find(|stage| stage.name == service.dockerfile_target())
        .unwrap_or_else(|| {
            panic!(
                "the Dockerfile has no target {}",
                service.dockerfile_target()
            )
        })
}

// ---------------------------------------------------------------------------
// YAML files
// ---------------------------------------------------------------------------

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Parses every document of a YAML stream.
///
/// The stream is split at document markers (`---` or `...` at the start of a
/// line, which YAML forbids inside a document's content) because
/// `serde_yaml::from_str` accepts only one document.
fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut sources = vec![String::new()];
    for line in text.lines() {
        let is_marker = |marker: &str| line == marker || line.starts_with(&format!("{marker} "));
        if is_marker("---") {
            sources.push(line[3..].to_owned());
            sources.last_mut().unwrap().push('\n');
        } else if is_marker("...") {
            sources.push(String::new());
        } else {
            let current = sources.last_mut().unwrap();
            current.push_str(line);
            current.push('\n');
        }
    }

    let mut documents = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let value: Value =
            serde_yaml::from_str(source).map_err(|error| format!("document {index}: {error}"))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

fn documents_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_yaml_documents(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn field<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, key| current.get(*key))
}

fn text_field<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    field(value, path).and_then(Value::as_str)
}

fn sequence<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    field(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// Renders a scalar as the text a container would see in its environment.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|mapping| {
            mapping
                .iter()
                .map(|(key, value)| (scalar_text(key), scalar_text(value)))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

fn kubernetes_dir() -> PathBuf {
    deploy_dir().join("kubernetes")
}

/// Reads every Kubernetes object under `deploy/kubernetes`, kustomizations
/// included.
fn kubernetes_documents() -> Vec<(PathBuf, Value)> {
    yaml_files_under(&kubernetes_dir())
        .into_iter()
        .flat_map(|path| {
            documents_in(&path)
                .into_iter()
                .map(move |document| (path.clone(), document))
        })
        .collect()
}

fn documents_of_kind(kind: &str) -> Vec<(PathBuf, Value)> {
    kubernetes_documents()
        .into_iter()
        .filter(|(_, document)| text_field(document, &["kind"]) == Some(kind))
        .collect()
}

fn config_maps() -> BTreeMap<String, BTreeMap<String, String>> {
    documents_of_kind("ConfigMap")
        .iter()
        .map(|(_, document)| {
            let name = text_field(document, &["metadata", "name"])
                .unwrap()
                .to_owned();
            (name, string_map(field(document, &["data"])))
        })
        .collect()
}

/// A container of a Deployment that runs one of the two services.
struct KubernetesContainer {
    /// `file/deployment/container`, for messages.
    origin: String,
    service: Service,
    container: Value,
    pod_labels: BTreeMap<String, String>,
    /// The pod template's `spec`, for its volumes.
    pod_spec: Value,
    /// The image's `ENV` lines, then `envFrom` ConfigMaps, then `env`.
    environment: BTreeMap<String, String>,
    /// Variables the manifest sets, without the image's `ENV` lines.
    manifest_variables: BTreeSet<String>,
}

fn kubernetes_containers() -> Vec<KubernetesContainer> {
    let config_maps = config_maps();
    let mut found = Vec::new();

    for (path, deployment) in documents_of_kind("Deployment") {
        let deployment_name = text_field(&deployment, &["metadata", "name"]).unwrap();
        let pod_spec = field(&deployment, &["spec", "template", "spec"])
            .cloned()
            .unwrap_or(Value::Null);
        let pod_labels = string_map(field(
            &deployment,
            &["spec", "template", "metadata", "labels"],
        ));

        for container in sequence(&deployment, &["spec", "template", "spec", "containers"]) {
            let Some(service) = text_field(container, &["image"]).and_then(Service::from_image)
            else {
                continue;
            };
            let container_name = text_field(container, &["name"]).unwrap();
            let origin = format!("{}/{deployment_name}/{container_name}", relative(&path));

            let mut environment = runtime_stage(service).environment;
            let mut manifest_variables = BTreeSet::new();
            for source in sequence(container, &["envFrom"]) {
                let name = text_field(source, &["configMapRef", "name"])
                    .unwrap_or_else(|| panic!("{origin}: envFrom other than configMapRef"));
                let data = config_maps.get(name).unwrap_or_else(|| {
                    panic!("{origin}: envFrom names the missing ConfigMap {name}")
                });
                manifest_variables.extend(data.keys().cloned());
                environment.extend(data.clone());
            }
            for variable in sequence(container, &["env"]) {
                let name = text_field(variable, &["name"]).unwrap().to_owned();
                let value = match field(variable, &["value"]) {
                    Some(value) => scalar_text(value),
                    None => SECRET_PLACEHOLDER.to_owned(),
                };
                manifest_variables.insert(name.clone());
                environment.insert(name, value);
            }

            found.push(KubernetesContainer {
                origin,
                service,
                container: container.clone(),
                pod_labels: pod_labels.clone(),
                pod_spec: pod_spec.clone(),
                environment,
                manifest_variables,
            });
        }
    }
    found
}

fn kubernetes_container(service: Service) -> KubernetesContainer {
    kubernetes_containers()
        .into_iter()
        .find(|container| container.service == service)
        .unwrap_or_else(|| panic!("no Deployment runs {}", service.image_name()))
}

/// A file that a container reads from a mounted volume.
struct MountedFile {
    /// The pod's volume definition, such as `{name, secret: {secretName}}`.
    volume: Value,
    /// The file's name inside the volume, which is the key of the
    /// ConfigMap or Secret when the volume lists no `items`.
    key: String,
    read_only: bool,
}

/// Finds the volume mount of `container` that contains `path`.
fn mounted_file(container: &KubernetesContainer, path: &str) -> Option<MountedFile> {
    sequence(&container.container, &["volumeMounts"])
        .iter()
        .find_map(|mount| {
            let mount_path = text_field(mount, &["mountPath"])?.trim_end_matches('/');
            let key = path.strip_prefix(mount_path)?.strip_prefix('/')?;
            let name = text_field(mount, &["name"])?;
            let volume = sequence(&container.pod_spec, &["volumes"])
                .iter()
                .find(|volume| text_field(volume, &["name"]) == Some(name))?;
            Some(MountedFile {
                volume: volume.clone(),
                key: key.to_owned(),
                read_only: field(mount, &["readOnly"]).and_then(Value::as_bool) == Some(true),
            })
        })
}

/// Returns the text of the service-accounts file that the Kubernetes
/// directory reads from its mounted ConfigMap.
fn kubernetes_service_accounts_text() -> String {
    let directory = kubernetes_container(Service::Directory);
    let path = &directory.environment["WORKTEAMS_DIRECTORY_AUTH_SERVICE_ACCOUNTS_FILE"];
    let mounted = mounted_file(&directory, path)
        .unwrap_or_else(|| panic!("{}: {path} is not in a mounted volume", directory.origin));
    let config_map = text_field(&mounted.volume, &["configMap", "name"])
        .unwrap_or_else(|| panic!("{}: {path} is not from a ConfigMap", directory.origin));

    config_maps()
        .get(config_map)
        .and_then(|data| data.get(&mounted.key))
        .cloned()
        .unwrap_or_else(|| panic!("ConfigMap {config_map} has no key {}", mounted.key))
}

/// Writes a local HS256 secret, a sidecar token and the example's
/// service-accounts file under `dir`, and returns the Kubernetes example's
/// directory and sidecar settings pointing at them.
///
/// A test cannot fetch the example's JWKS URL, and no identity provider
/// signs tokens for it. So only the key source is swapped for a local HS256
/// secret, and the sidecar's token is minted with it for its service account
/// with the example's issuer and audience. The service-accounts file keeps
/// the example's content, so the sidecar only reaches SERVING when that file
/// gives its account the `read` scope that Watch and ExportSnapshot need.
fn kubernetes_environments_with_local_keys(
    dir: &Path,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut directory = kubernetes_container(Service::Directory).environment;
    let mut sidecar = kubernetes_container(Service::Authz).environment;

    let secret_file = dir.join("token-secret");
    std::fs::write(&secret_file, TEST_TOKEN_SECRET).unwrap();
    let service_accounts_file = dir.join("service-accounts.yaml");
    std::fs::write(&service_accounts_file, kubernetes_service_accounts_text()).unwrap();

    let claims = TokenClaims::new(
        SIDECAR_ACCOUNT,
        directory["WORKTEAMS_DIRECTORY_AUTH_ISSUER"].clone(),
        directory["WORKTEAMS_DIRECTORY_AUTH_AUDIENCE"].clone(),
        Duration::from_secs(60 * 60),
    );
    let token = mint_hs256(TEST_TOKEN_SECRET.as_bytes(), &claims).unwrap();
    let token_file = dir.join("directory-token");
    std::fs::write(&token_file, token).unwrap();

    directory.remove("WORKTEAMS_DIRECTORY_AUTH_JWKS_URL");
    directory.remove("WORKTEAMS_DIRECTORY_AUTH_JWKS_REFRESH");
    directory.remove("WORKTEAMS_DIRECTORY_AUTH_JWKS_CA_FILE");
    directory.insert(
        "WORKTEAMS_DIRECTORY_AUTH_SECRET_FILE".to_owned(),
        secret_file.display().to_string(),
    );
    directory.insert(
        "WORKTEAMS_DIRECTORY_AUTH_SERVICE_ACCOUNTS_FILE".to_owned(),
        service_accounts_file.display().to_string(),
    );
    sidecar.insert(
        "WORKTEAMS_AUTHZ_DIRECTORY_TOKEN_FILE".to_owned(),
        token_file.display().to_string(),
    );
    (directory, sidecar)
}

/// Reads the kustomization files, each with its directory.
fn kustomizations() -> Vec<(PathBuf, Value)> {
    yaml_files_under(&kubernetes_dir())
        .into_iter()
        .filter(|path| path.file_name() == Some(OsStr::new("kustomization.yaml")))
        .map(|path| {
            let document = documents_in(&path).remove(0);
            (path.parent().unwrap().to_path_buf(), document)
        })
        .collect()
}

/// Splits the `literals` of a ConfigMap or Secret generator at the first `=`.
fn generator_literals(generator: &Value) -> BTreeMap<String, String> {
    sequence(generator, &["literals"])
        .iter()
        .map(|literal| {
            let (name, value) = literal
                .as_str()
                .unwrap()
                .split_once('=')
                .expect("literal in NAME=VALUE form");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn development_database_url() -> String {
    let (_, development) = kustomizations()
        .into_iter()
        .find(|(dir, _)| dir.ends_with("overlays/development"))
        .expect("a development overlay");
    sequence(&development, &["secretGenerator"])
        .iter()
        .filter(|generator| {
            text_field(generator, &["name"]) == Some("workteams-directory-database")
        })
        .find_map(|generator| generator_literals(generator).remove("url"))
        .expect("the development overlay generates workteams-directory-database with a url")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(deploy_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Returns the container port that a probe or Service port names, by number
/// or by name.
fn resolve_container_port(container: &Value, port: &Value) -> Option<u16> {
    let ports = sequence(container, &["ports"]);
    match port {
        Value::Number(number) => number.as_u64().map(|number| u16::try_from(number).unwrap()),
        Value::String(name) => ports
            .iter()
            .find(|candidate| text_field(candidate, &["name"]) == Some(name.as_str()))
            .and_then(|candidate| field(candidate, &["containerPort"]))
            .and_then(Value::as_u64)
            .map(|number| u16::try_from(number).unwrap()),
        _ => None,
    }
}

/// Returns the `-addr=` address of a `grpc_health_probe` command.
fn health_probe_address(command: &[Value]) -> Option<SocketAddr> {
    command
        .iter()
        .filter_map(Value::as_str)
        .find_map(|argument| argument.strip_prefix("-addr="))
        .map(|address| address.parse().unwrap())
}

fn health_probe_service(command: &[Value]) -> Option<&str> {
    command
        .iter()
        .filter_map(Value::as_str)
        .find_map(|argument| argument.strip_prefix("-service="))
}

const PROBES: [&str; 3] = ["readinessProbe", "livenessProbe", "startupProbe"];

// ---------------------------------------------------------------------------
// Compose
// ---------------------------------------------------------------------------

fn compose_dir() -> PathBuf {
    deploy_dir().join("compose")
}

fn compose_file() -> Value {
    documents_in(&compose_dir().join("compose.yaml")).remove(0)
}

/// A Compose service that runs one of the two services.
struct ComposeService {
    name: String,
    service: Service,
    definition: Value,
    /// The image's `ENV` lines, then the service's `environment`.
    environment: BTreeMap<String, String>,
    manifest_variables: BTreeSet<String>,
}

fn compose_services() -> Vec<ComposeService> {
    let compose = compose_file();
    let services = field(&compose, &["services"])
        .and_then(Value::as_mapping)
        .unwrap();
    let mut found = Vec::new();

    for (name, definition) in services {
        let Some(service) = text_field(definition, &["image"]).and_then(Service::from_image) else {
            continue;
        };
        let declared = string_map(field(definition, &["environment"]));
        let mut environment = runtime_stage(service).environment;
        environment.extend(declared.clone());
        found.push(ComposeService {
            name: scalar_text(name),
            service,
            definition: definition.clone(),
            environment,
            manifest_variables: declared.into_keys().collect(),
        });
    }
    found
}

fn compose_service(service: Service) -> ComposeService {
    compose_services()
        .into_iter()
        .find(|candidate| candidate.service == service)
        .unwrap_or_else(|| panic!("no Compose service runs {}", service.image_name()))
}

/// A published port in the short `HOST_IP:HOST_PORT:CONTAINER_PORT` form.
struct PublishedPort {
    host_ip: String,
    container_port: u16,
}

fn published_ports(definition: &Value) -> Vec<PublishedPort> {
    sequence(definition, &["ports"])
        .iter()
        .map(|port| {
            let text = scalar_text(port);
            let parts: Vec<&str> = text.split(':').collect();
            let [host_ip, _, container_port] = parts.as_slice() else {
                panic!(
                    "port {text:?} does not name the host address; write 127.0.0.1:HOST:CONTAINER"
                );
            };
            PublishedPort {
                host_ip: (*host_ip).to_owned(),
                container_port: container_port.trim_end_matches("/tcp").parse().unwrap(),
            }
        })
        .collect()
}

/// Splits `http://host:port` into host and port.
fn url_host_and_port(url: &str) -> (String, u16) {
    let uri: tonic::codegen::http::Uri = url.parse().unwrap();
    (uri.host().unwrap().to_owned(), uri.port_u16().unwrap())
}

// ---------------------------------------------------------------------------
// Starting the services with the example settings
// ---------------------------------------------------------------------------

/// Turns environment variables into the command-line flags they stand for,
/// using the `env` names declared on the clap arguments. Variables that are
/// not flags (logging, OpenTelemetry) are left out.
fn flags_from_environment(
    command: &clap::Command,
    environment: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut arguments = vec![command.get_name().to_owned()];

    for (name, value) in environment {
        let Some(argument) = command
            .get_arguments()
            .find(|argument| argument.get_env() == Some(OsStr::new(name)))
        else {
            continue;
        };
        let long = argument.get_long().unwrap();
        if argument.get_action().takes_values() {
            arguments.push(format!("--{long}"));
            arguments.push(value.clone());
        } else if !["n", "no", "f", "false", "off", "0"]
            .contains(&value.to_ascii_lowercase().as_str())
        {
            // clap reads a boolean flag's variable as false for these words.
            arguments.push(format!("--{long}"));
        }
    }
    arguments
}

struct RunningServer {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl RunningServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        let served = self.task.await.unwrap();
        assert_eq!(
            served,
            Ok(()),
            "server on {} stopped with an error",
            self.address
        );
    }
}

/// Starts the directory with `environment`, swapping its listen address for
/// a free loopback port and its database for `database_url`.
async fn start_directory(
    mut environment: BTreeMap<String, String>,
    data_dir: &Path,
    database_url: &str,
) -> RunningServer {
    environment.insert(
        Service::Directory.listen_variable().to_owned(),
        "127.0.0.1:0".to_owned(),
    );
    environment.insert(
        "WORKTEAMS_DIRECTORY_DATA_DIR".to_owned(),
        data_dir.display().to_string(),
    );
    environment.insert(
        "WORKTEAMS_DIRECTORY_DATABASE_URL".to_owned(),
        database_url.to_owned(),
    );

    let flags = flags_from_environment(&DirectoryArgs::command(), &environment);
    let config = DirectoryArgs::try_parse_from(&flags)
        .unwrap()
        .resolve()
        .unwrap();

    let listener = TcpListener::bind(config.listen_address).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        workteams_directory::serve(config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .map_err(|error| error.to_string())
    });
    RunningServer {
        address,
        stop,
        task,
    }
}

/// Starts the sidecar with `environment`, swapping its listen address for a
/// free loopback port and its directory for `directory`.
async fn start_sidecar(
    mut environment: BTreeMap<String, String>,
    directory: SocketAddr,
) -> RunningServer {
    environment.insert(
        Service::Authz.listen_variable().to_owned(),
        "127.0.0.1:0".to_owned(),
    );
    environment.insert(
        "WORKTEAMS_DIRECTORY_ADDRESS".to_owned(),
        format!("http://{directory}"),
    );

    let flags = flags_from_environment(&AuthzConfig::command(), &environment);
    let config = AuthzConfig::try_parse_from(&flags).unwrap();
    config.validate().unwrap();

    let listener = TcpListener::bind(config.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        workteams_authz::serve(config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .map_err(|error| error.to_string())
    });
    RunningServer {
        address,
        stop,
        task,
    }
}

async fn connect(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap()
}

/// Polls the health service until `service` is SERVING, and returns the last
/// status seen when it never gets there within [`SERVING_WAIT`].
async fn wait_for_serving(address: SocketAddr, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(connect(address).await);
    let deadline = tokio::time::Instant::now() + SERVING_WAIT;
    loop {
        let status = match health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
        {
            Ok(response) => response.into_inner().status(),
            Err(_) => ServingStatus::Unknown,
        };
        if status == ServingStatus::Serving || tokio::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the directory and the sidecar with one example's settings on
/// `database_url`, and checks both report SERVING overall and for their gRPC
/// service.
async fn check_example_serves(
    example: &str,
    directory_environment: BTreeMap<String, String>,
    sidecar_environment: BTreeMap<String, String>,
    database_url: &str,
) {
    let data_dir = tempfile::tempdir().unwrap();
    let directory = start_directory(directory_environment, data_dir.path(), database_url).await;
    let sidecar = start_sidecar(sidecar_environment, directory.address).await;

    for (server, service) in [(&directory, Service::Directory), (&sidecar, Service::Authz)] {
        let overall = wait_for_serving(server.address, "").await;
        let named = wait_for_serving(server.address, service.grpc_service_name()).await;
        assert_eq!(
            overall,
            ServingStatus::Serving,
            "{example}: {} overall health",
            service.binary()
        );
        assert_eq!(
            named,
            ServingStatus::Serving,
            "{example}: {} service health",
            service.binary()
        );
    }

    sidecar.stop().await;
    directory.stop().await;
}

// ---------------------------------------------------------------------------
// Tests: YAML and the Dockerfile
// ---------------------------------------------------------------------------

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files_under(&deploy_dir());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            parse_yaml_documents(&text)
                .err()
                .map(|error| format!("{}: {error}", relative(path)))
        })
        .collect();

    assert!(
        files.len() >= 10,
        "found only {} YAML files under deploy/",
        files.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn multi_document_yaml_splits() {
    let documents = parse_yaml_documents("a: 1\n---\nb: 2\n--- c: 3\n...\n").unwrap();

    assert_eq!(documents.len(), 3);
    assert_eq!(
        field(&documents[1], &["b"]).and_then(Value::as_u64),
        Some(2)
    );
    assert!(parse_yaml_documents("a: [1\n---\nb: 2\n").is_err());
}

#[test]
fn dockerfile_targets_run_binaries() {
    for service in Service::ALL {
        let stage = runtime_stage(service);
        let binary_path = format!("/usr/local/bin/{}", service.binary());

        assert_eq!(
            stage.entrypoint,
            vec![binary_path.clone()],
            "{service:?} entrypoint"
        );
        assert!(
            stage.copied_paths.contains(&binary_path),
            "{service:?} copies {binary_path}"
        );
        assert!(
            stage.base_image.contains("distroless"),
            "{service:?} runs on {}",
            stage.base_image
        );
        assert_eq!(
            stage.user.as_deref(),
            Some("65532:65532"),
            "{service:?} runs as non-root"
        );
    }
}

#[test]
fn dockerfile_exposes_listen_ports() {
    for service in Service::ALL {
        let stage = runtime_stage(service);
        let listen = service.listen_address(&stage.environment);

        assert_eq!(
            stage.exposed_ports,
            vec![listen.port()],
            "{service:?} EXPOSE"
        );
    }
}

#[test]
fn dockerfile_env_names_exist() {
    for service in Service::ALL {
        let known = service.known_variables();
        let unknown: Vec<String> = runtime_stage(service)
            .environment
            .into_keys()
            .filter(|name| !known.contains(name))
            .collect();

        assert!(
            unknown.is_empty(),
            "{service:?} image sets unknown variables {unknown:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Tests: Kubernetes
// ---------------------------------------------------------------------------

#[test]
fn kubernetes_runs_both_services() {
    let services: BTreeSet<Service> = kubernetes_containers()
        .iter()
        .map(|container| container.service)
        .collect();

    assert_eq!(services, BTreeSet::from(Service::ALL));
}

#[test]
fn kubernetes_env_names_exist() {
    for container in kubernetes_containers() {
        let known = container.service.known_variables();
        let unknown: Vec<&String> = container
            .manifest_variables
            .iter()
            .filter(|name| !known.contains(*name))
            .collect();

        assert!(
            unknown.is_empty(),
            "{}: unknown variables {unknown:?}",
            container.origin
        );
    }
}

#[test]
fn generated_config_names_exist() {
    let consumers: Vec<KubernetesContainer> = kubernetes_containers();

    for (dir, kustomization) in kustomizations() {
        for generator in sequence(&kustomization, &["configMapGenerator"]) {
            let name = text_field(generator, &["name"]).unwrap();
            let readers: Vec<&KubernetesContainer> = consumers
                .iter()
                .filter(|container| {
                    sequence(&container.container, &["envFrom"])
                        .iter()
                        .any(|source| text_field(source, &["configMapRef", "name"]) == Some(name))
                })
                .collect();
            assert!(
                !readers.is_empty(),
                "{}: no container reads ConfigMap {name}",
                relative(&dir)
            );

            for variable in generator_literals(generator).keys() {
                for reader in &readers {
                    let known = reader.service.known_variables();
                    assert!(
                        known.contains(variable),
                        "{}: {name} sets unknown {variable}",
                        relative(&dir)
                    );
                }
            }
        }
    }
}

#[test]
fn container_ports_match_listen() {
    for container in kubernetes_containers() {
        let listen = container.service.listen_address(&container.environment);

        for port in sequence(&container.container, &["ports"]) {
            let container_port = field(port, &["containerPort"]).and_then(Value::as_u64);
            assert_eq!(
                container_port,
                Some(u64::from(listen.port())),
                "{} containerPort",
                container.origin
            );
        }
    }
}

#[test]
fn exposed_services_listen_beyond_loopback() {
    // A containerPort only makes sense when the pod IP reaches the server.
    for container in kubernetes_containers() {
        let listen = container.service.listen_address(&container.environment);
        let declares_ports = !sequence(&container.container, &["ports"]).is_empty();

        assert_eq!(
            declares_ports,
            !listen.ip().is_loopback(),
            "{} listens on {listen}",
            container.origin
        );
    }
}

#[test]
fn probes_reach_listen_address() {
    for container in kubernetes_containers() {
        let listen = container.service.listen_address(&container.environment);

        for probe_name in PROBES {
            let Some(probe) = field(&container.container, &[probe_name]) else {
                panic!("{} has no {probe_name}", container.origin);
            };
            let origin = format!("{} {probe_name}", container.origin);

            if let Some(grpc) = field(probe, &["grpc"]) {
                // The kubelet dials the pod IP, where a loopback listener accepts no connection.
                assert!(
                    !listen.ip().is_loopback(),
                    "{origin}: gRPC probe on loopback listener {listen}"
                );
                let port =
                    resolve_container_port(&container.container, field(grpc, &["port"]).unwrap());
                assert_eq!(port, Some(listen.port()), "{origin}: port");
                if let Some(service) = text_field(grpc, &["service"]) {
                    assert_eq!(
                        service,
                        container.service.grpc_service_name(),
                        "{origin}: service"
                    );
                }
            } else if let Some(command) =
                field(probe, &["exec", "command"]).and_then(Value::as_sequence)
            {
                let executable = command[0].as_str().unwrap();
                let stage = runtime_stage(container.service);
                assert!(
                    stage.copied_paths.iter().any(|path| path == executable),
                    "{origin}: {executable} not in image"
                );
                let address = health_probe_address(command);
                assert_eq!(address, Some(listen), "{origin}: -addr");
                if let Some(service) = health_probe_service(command) {
                    assert_eq!(
                        service,
                        container.service.grpc_service_name(),
                        "{origin}: -service"
                    );
                }
            } else {
                panic!("{origin}: neither a gRPC nor an exec probe");
            }
        }
    }
}

#[test]
fn kubernetes_images_are_dockerfile_targets() {
    let targets: BTreeSet<String> = dockerfile_stages()
        .into_iter()
        .map(|stage| stage.name)
        .collect();

    for (path, deployment) in documents_of_kind("Deployment") {
        for container in sequence(&deployment, &["spec", "template", "spec", "containers"]) {
            let Some(image) = text_field(container, &["image"]) else {
                continue;
            };
            let Some(name) = image_without_tag(image).strip_prefix("workteams/") else {
                continue;
            };
            assert!(
                targets.contains(name),
                "{}: image {image} is no Dockerfile target",
                relative(&path)
            );
        }
    }
}

#[test]
fn kustomize_images_are_used() {
    let used: BTreeSet<String> = kubernetes_containers()
        .iter()
        .map(|container| container.service.image_name())
        .collect();

    for (dir, kustomization) in kustomizations() {
        for image in sequence(&kustomization, &["images"]) {
            let name = text_field(image, &["name"]).unwrap();
            assert!(
                used.contains(name),
                "{}: images lists unused {name}",
                relative(&dir)
            );
        }
    }
}

#[test]
fn kustomization_paths_exist() {
    for (dir, kustomization) in kustomizations() {
        let mut paths: Vec<&str> = sequence(&kustomization, &["resources"])
            .iter()
            .chain(sequence(&kustomization, &["components"]))
            .filter_map(Value::as_str)
            .collect();
        paths.extend(
            sequence(&kustomization, &["patches"])
                .iter()
                .filter_map(|patch| text_field(patch, &["path"])),
        );

        for path in paths {
            let target = dir.join(path);
            let exists = target.is_file() || target.join("kustomization.yaml").is_file();
            assert!(exists, "{}: {path} does not exist", relative(&dir));
        }
    }
}

#[test]
fn base_lists_every_manifest() {
    let base = kubernetes_dir().join("base");
    let (_, kustomization) = kustomizations()
        .into_iter()
        .find(|(dir, _)| *dir == base)
        .unwrap();
    let listed: BTreeSet<&str> = sequence(&kustomization, &["resources"])
        .iter()
        .filter_map(Value::as_str)
        .collect();

    for path in yaml_files_under(&base) {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        if file_name != "kustomization.yaml" {
            assert!(
                listed.contains(file_name),
                "base/kustomization.yaml does not list {file_name}"
            );
        }
    }
}

#[test]
fn kustomize_replicas_name_deployments() {
    let deployments: BTreeSet<String> = documents_of_kind("Deployment")
        .iter()
        .filter_map(|(_, document)| text_field(document, &["metadata", "name"]).map(str::to_owned))
        .collect();

    for (dir, kustomization) in kustomizations() {
        for replicas in sequence(&kustomization, &["replicas"]) {
            let name = text_field(replicas, &["name"]).unwrap();
            assert!(
                deployments.contains(name),
                "{}: replicas names unknown {name}",
                relative(&dir)
            );
        }
    }
}

#[test]
fn services_target_directory_port() {
    let containers = kubernetes_containers();

    for (path, service) in documents_of_kind("Service") {
        let selector = string_map(field(&service, &["spec", "selector"]));
        let selected: Vec<&KubernetesContainer> = containers
            .iter()
            .filter(|container| {
                selector
                    .iter()
                    .all(|(key, value)| container.pod_labels.get(key) == Some(value))
            })
            .collect();
        assert!(
            !selected.is_empty(),
            "{}: selector matches no pod",
            relative(&path)
        );

        for port in sequence(&service, &["spec", "ports"]) {
            let target = field(port, &["targetPort"])
                .or_else(|| field(port, &["port"]))
                .unwrap();
            for container in &selected {
                let listen = container.service.listen_address(&container.environment);
                let resolved = resolve_container_port(&container.container, target);
                assert_eq!(
                    resolved,
                    Some(listen.port()),
                    "{}: targetPort {target:?}",
                    relative(&path)
                );
            }
        }
    }
}

#[test]
fn disruption_budget_selects_directory() {
    let budgets = documents_of_kind("PodDisruptionBudget");
    let directory = kubernetes_container(Service::Directory);

    assert!(!budgets.is_empty(), "no PodDisruptionBudget");
    for (path, budget) in budgets {
        let selector = string_map(field(&budget, &["spec", "selector", "matchLabels"]));
        let matches = selector
            .iter()
            .all(|(key, value)| directory.pod_labels.get(key) == Some(value));
        assert!(
            matches,
            "{}: selector misses the directory pods",
            relative(&path)
        );
    }
}

#[test]
fn sidecar_follows_directory_service() {
    let sidecar = kubernetes_container(Service::Authz);
    let directory_url = sidecar
        .environment
        .get("WORKTEAMS_DIRECTORY_ADDRESS")
        .expect("the sidecar names the directory");
    let (host, port) = url_host_and_port(directory_url);
    let service_name = host.split('.').next().unwrap();

    let service = documents_of_kind("Service")
        .into_iter()
        .find(|(_, service)| text_field(service, &["metadata", "name"]) == Some(service_name))
        .map(|(_, service)| service)
        .unwrap_or_else(|| panic!("no Service named {service_name}"));
    let ports: Vec<u64> = sequence(&service, &["spec", "ports"])
        .iter()
        .filter_map(|port| field(port, &["port"]).and_then(Value::as_u64))
        .collect();

    assert!(
        ports.contains(&u64::from(port)),
        "Service {service_name} has no port {port}: {ports:?}"
    );
}

#[test]
fn database_secret_generated_for_development() {
    let database_url = development_database_url();
    let directory = kubernetes_container(Service::Directory);

    let from_secret = sequence(&directory.container, &["env"])
        .iter()
        .find(|variable| {
            text_field(variable, &["name"]) == Some("WORKTEAMS_DIRECTORY_DATABASE_URL")
        })
        .and_then(|variable| field(variable, &["valueFrom", "secretKeyRef"]))
        .expect("the directory reads its database URL from a Secret");

    assert_eq!(
        text_field(from_secret, &["name"]),
        Some("workteams-directory-database")
    );
    assert_eq!(text_field(from_secret, &["key"]), Some("url"));
    assert!(database_url.starts_with("postgres://"), "{database_url}");
}

#[test]
fn kubernetes_settings_validate() {
    let mut directory = kubernetes_container(Service::Directory).environment;
    directory.insert(
        "WORKTEAMS_DIRECTORY_DATABASE_URL".to_owned(),
        development_database_url(),
    );
    let sidecar = kubernetes_container(Service::Authz).environment;

    let directory_flags = flags_from_environment(&DirectoryArgs::command(), &directory);
    let sidecar_flags = flags_from_environment(&AuthzConfig::command(), &sidecar);

    // Resolving checks the settings without reading the mounted files or
    // fetching the JWKS URL, which a test cannot reach.
    let resolved = DirectoryArgs::try_parse_from(&directory_flags)
        .unwrap()
        .resolve();
    assert!(resolved.is_ok(), "{directory_flags:?}: {resolved:?}");
    assert_eq!(
        AuthzConfig::try_parse_from(&sidecar_flags)
            .unwrap()
            .validate(),
        Ok(())
    );

    let config = resolved.unwrap();
    let Authentication::Tokens(settings) = config.authentication else {
        panic!(
            "the directory does not verify tokens: {:?}",
            config.authentication
        );
    };
    assert!(
        matches!(settings.keys, KeySource::JwksUrl { .. }),
        "keys: {:?}",
        settings.keys
    );
    assert!(
        settings.service_accounts_file.is_some(),
        "no service-accounts file"
    );
    assert!(
        sidecar.contains_key("WORKTEAMS_AUTHZ_DIRECTORY_TOKEN_FILE"),
        "the sidecar sends no token to the directory"
    );
}

#[test]
fn kubernetes_auth_files_mounted() {
    let directory = kubernetes_container(Service::Directory);
    let accounts_path = &directory.environment["WORKTEAMS_DIRECTORY_AUTH_SERVICE_ACCOUNTS_FILE"];
    let accounts = mounted_file(&directory, accounts_path)
        .unwrap_or_else(|| panic!("{}: {accounts_path} is not mounted", directory.origin));
    let from_config_map = field(&accounts.volume, &["configMap", "name"]).is_some();
    let from_secret = field(&accounts.volume, &["secret", "secretName"]).is_some();

    assert!(
        from_config_map || from_secret,
        "{}: {accounts_path} is neither from a ConfigMap nor a Secret",
        directory.origin
    );
    assert!(
        accounts.read_only,
        "{}: {accounts_path} is writable",
        directory.origin
    );

    let sidecar = kubernetes_container(Service::Authz);
    let token_path = &sidecar.environment["WORKTEAMS_AUTHZ_DIRECTORY_TOKEN_FILE"];
    let token = mounted_file(&sidecar, token_path)
        .unwrap_or_else(|| panic!("{}: {token_path} is not mounted", sidecar.origin));

    assert!(
        text_field(&token.volume, &["secret", "secretName"]).is_some(),
        "{}: {token_path} is not from a Secret",
        sidecar.origin
    );
    assert_eq!(
        token.key, "token",
        "{}: key of the token Secret",
        sidecar.origin
    );
    assert!(
        token.read_only,
        "{}: {token_path} is writable",
        sidecar.origin
    );
}

#[test]
fn kubernetes_secrets_not_committed() {
    // The operator creates the token and database Secrets in the cluster.
    // Only the development overlay generates its database Secret from a
    // literal.
    let secrets = documents_of_kind("Secret");
    let generated: Vec<String> = kustomizations()
        .into_iter()
        .flat_map(|(_, kustomization)| {
            sequence(&kustomization, &["secretGenerator"])
                .iter()
                .filter_map(|generator| text_field(generator, &["name"]).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();

    assert!(secrets.is_empty(), "committed Secrets: {secrets:?}");
    assert_eq!(generated, vec!["workteams-directory-database".to_owned()]);
}

#[test]
fn kubernetes_sidecar_account_reads() {
    let accounts = ServiceAccounts::parse(&kubernetes_service_accounts_text()).unwrap();
    let sidecar = accounts
        .get(SIDECAR_ACCOUNT)
        .unwrap_or_else(|| panic!("no service account {SIDECAR_ACCOUNT}"));

    assert_eq!(sidecar.scopes, vec![Scope::ReadAll]);
}

// ---------------------------------------------------------------------------
// Tests: Compose
// ---------------------------------------------------------------------------

#[test]
fn compose_runs_both_services() {
    let services: BTreeSet<Service> = compose_services()
        .iter()
        .map(|service| service.service)
        .collect();

    assert_eq!(services, BTreeSet::from(Service::ALL));
}

#[test]
fn compose_env_names_exist() {
    for service in compose_services() {
        let known = service.service.known_variables();
        let unknown: Vec<&String> = service
            .manifest_variables
            .iter()
            .filter(|name| !known.contains(*name))
            .collect();

        assert!(
            unknown.is_empty(),
            "compose {}: unknown variables {unknown:?}",
            service.name
        );
    }
}

#[test]
fn compose_ports_on_loopback() {
    let compose = compose_file();
    let services = field(&compose, &["services"])
        .and_then(Value::as_mapping)
        .unwrap();

    for (name, definition) in services {
        for port in published_ports(definition) {
            assert_eq!(
                port.host_ip,
                "127.0.0.1",
                "compose {}: published port",
                scalar_text(name)
            );
        }
    }
}

#[test]
fn compose_ports_match_listen() {
    for service in compose_services() {
        let listen = service.service.listen_address(&service.environment);
        let ports = published_ports(&service.definition);

        assert!(
            !ports.is_empty(),
            "compose {} publishes no port",
            service.name
        );
        for port in ports {
            assert_eq!(
                port.container_port,
                listen.port(),
                "compose {}: container port",
                service.name
            );
        }
    }
}

#[test]
fn compose_healthcheck_reaches_listen() {
    for service in compose_services() {
        let Some(test) =
            field(&service.definition, &["healthcheck", "test"]).and_then(Value::as_sequence)
        else {
            continue;
        };
        let listen = service.service.listen_address(&service.environment);
        let executable = test[1].as_str().unwrap();
        let address = health_probe_address(test).unwrap();

        assert!(
            runtime_stage(service.service)
                .copied_paths
                .iter()
                .any(|path| path == executable)
        );
        assert_eq!(
            address.port(),
            listen.port(),
            "compose {}: healthcheck port",
            service.name
        );
        assert!(
            listen.ip().is_unspecified() || listen.ip() == address.ip(),
            "compose {}: healthcheck address {address} misses {listen}",
            service.name
        );
    }
}

#[test]
fn compose_builds_dockerfile_targets() {
    for service in compose_services() {
        let context = field(&service.definition, &["build", "context"])
            .map(scalar_text)
            .unwrap();
        let dockerfile = field(&service.definition, &["build", "dockerfile"])
            .map(scalar_text)
            .unwrap();
        let target = field(&service.definition, &["build", "target"]).map(scalar_text);
        let dockerfile_path = compose_dir().join(context).join(dockerfile);

        assert_eq!(
            dockerfile_path.canonicalize().unwrap(),
            deploy_dir().join("Dockerfile").canonicalize().unwrap()
        );
        assert_eq!(
            target.as_deref(),
            Some(service.service.dockerfile_target()),
            "compose {}",
            service.name
        );
    }
}

#[test]
fn compose_sidecar_follows_directory() {
    let directory = compose_service(Service::Directory);
    let sidecar = compose_service(Service::Authz);
    let (host, port) = url_host_and_port(&sidecar.environment["WORKTEAMS_DIRECTORY_ADDRESS"]);
    let listen = Service::Directory.listen_address(&directory.environment);

    assert_eq!(host, directory.name);
    assert_eq!(port, listen.port());
}

#[test]
fn compose_exports_to_collector() {
    let compose = compose_file();
    let collector_config = documents_in(&compose_dir().join("otel-collector.yaml")).remove(0);
    let grpc_endpoint = text_field(
        &collector_config,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    )
    .unwrap();
    let grpc_port: u16 = grpc_endpoint.rsplit(':').next().unwrap().parse().unwrap();

    for service in compose_services() {
        let endpoint = &service.environment["OTEL_EXPORTER_OTLP_ENDPOINT"];
        let (host, port) = url_host_and_port(endpoint);
        let collector = field(&compose, &["services", host.as_str()]);

        assert!(
            collector.is_some(),
            "compose {}: no service {host}",
            service.name
        );
        assert_eq!(port, grpc_port, "compose {}: OTLP port", service.name);
    }
}

#[test]
fn compose_collector_config_mounted() {
    let compose = compose_file();
    let volumes = sequence(&compose, &["services", "otel-collector", "volumes"]);
    let command = sequence(&compose, &["services", "otel-collector", "command"]);

    let (source, target) = volumes
        .iter()
        .filter_map(Value::as_str)
        .find_map(|volume| {
            let mut parts = volume.split(':');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .expect("a bind mount of the collector configuration");

    assert!(
        compose_dir().join(&source).is_file(),
        "{source} does not exist"
    );
    assert!(
        command
            .iter()
            .filter_map(Value::as_str)
            .any(|argument| argument == format!("--config={target}"))
    );
}

#[test]
fn compose_settings_validate() {
    let directory = compose_service(Service::Directory).environment;
    let sidecar = compose_service(Service::Authz).environment;

    let directory_flags = flags_from_environment(&DirectoryArgs::command(), &directory);
    let sidecar_flags = flags_from_environment(&AuthzConfig::command(), &sidecar);

    assert!(
        DirectoryArgs::try_parse_from(&directory_flags)
            .unwrap()
            .resolve()
            .is_ok(),
        "{directory_flags:?}"
    );
    assert_eq!(
        AuthzConfig::try_parse_from(&sidecar_flags)
            .unwrap()
            .validate(),
        Ok(())
    );
}

// ---------------------------------------------------------------------------
// Tests: starting the services
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_example_serves_sqlite() {
    let database = TestDatabase::sqlite();
    let auth_files = tempfile::tempdir().unwrap();
    let (directory, sidecar) = kubernetes_environments_with_local_keys(auth_files.path());

    check_example_serves("kubernetes", directory, sidecar, database.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_example_serves_sqlite() {
    // The Compose example turns authentication off, so it starts with its
    // own settings and no token.
    let database = TestDatabase::sqlite();

    check_example_serves(
        "compose",
        compose_service(Service::Directory).environment,
        compose_service(Service::Authz).environment,
        database.url(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_example_serves_postgres() {
    let Some(server_url) = TestDatabase::postgres_server_url() else {
        eprintln!("skipped: WORKTEAMS_TEST_DATABASE_URL is not set");
        return;
    };
    let database = TestDatabase::postgres(&server_url).await.unwrap();
    let auth_files = tempfile::tempdir().unwrap();
    let (directory, sidecar) = kubernetes_environments_with_local_keys(auth_files.path());

    check_example_serves(
        "kubernetes on PostgreSQL",
        directory,
        sidecar,
        database.url(),
    )
    .await;
    database.cleanup().await;
}

#[test]
fn boolean_env_becomes_flag() {
    let environment = BTreeMap::from([
        (
            "WORKTEAMS_AUTHZ_ALLOW_NON_LOOPBACK".to_owned(),
            "true".to_owned(),
        ),
        ("WORKTEAMS_AUTHZ_LISTEN".to_owned(), "0.0.0.0:1".to_owned()),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ]);
    let flags = flags_from_environment(&AuthzConfig::command(), &environment);
    let config = AuthzConfig::try_parse_from(&flags).unwrap();

    assert!(config.allow_non_loopback);
    assert_eq!(config.listen, "0.0.0.0:1".parse().unwrap());
}
