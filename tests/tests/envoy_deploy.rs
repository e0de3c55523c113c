//! Checks the Envoy example under `deploy/envoy/` without Envoy: the ext_authz
//! filter must call the sidecar's external authorization service on the
//! sidecar's gRPC port over HTTP/2 and fail closed. The mapping example must
//! pass the sidecar's own checks and use the metadata Envoy sends it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_yaml::Value;
use workteams_authz::AuthzConfig;
use workteams_authz::envoy::ExtAuthzMapping;

const EXT_AUTHZ_FILTER: &str = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
const JWT_AUTHN_FILTER: &str = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

fn envoy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/envoy")
}

fn envoy_config() -> Value {
    let text = std::fs::read_to_string(envoy_dir().join("envoy.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |value, key| &value[*key])
}

fn sequence<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path).as_sequence().map_or(&[], Vec::as_slice)
}

/// Collects every HTTP filter of every listener, in order.
fn http_filters(config: &Value) -> Vec<&Value> {
    sequence(config, &["static_resources", "listeners"])
        .iter()
        .flat_map(|listener| sequence(listener, &["filter_chains"]))
        .flat_map(|chain| sequence(chain, &["filters"]))
        .flat_map(|filter| sequence(filter, &["typed_config", "http_filters"]))
        .collect()
}

fn filter_of_type<'a>(config: &'a Value, type_url: &str) -> &'a Value {
    http_filters(config)
        .into_iter()
        .find(|filter| at(filter, &["typed_config", "@type"]).as_str() == Some(type_url))
        .map(|filter| at(filter, &["typed_config"]))
        .unwrap_or_else(|| panic!("no HTTP filter of type {type_url}"))
}

fn cluster<'a>(config: &'a Value, name: &str) -> &'a Value {
    sequence(config, &["static_resources", "clusters"])
        .iter()
        .find(|cluster| cluster["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

#[test]
fn ext_authz_filter_calls_the_sidecar() {
    let config = envoy_config();
    let ext_authz = filter_of_type(&config, EXT_AUTHZ_FILTER);
    let cluster_name = at(ext_authz, &["grpc_service", "envoy_grpc", "cluster_name"])
        .as_str()
        .expect("ext_authz uses an Envoy gRPC cluster");
    let authz = cluster(&config, cluster_name);
    let endpoints: Vec<&Value> = sequence(authz, &["load_assignment", "endpoints"])
        .iter()
        .flat_map(|group| sequence(group, &["lb_endpoints"]))
        .map(|endpoint| at(endpoint, &["endpoint", "address", "socket_address"]))
        .collect();
    let sidecar = AuthzConfig::default().listen;

    assert_eq!(at(ext_authz, &["transport_api_version"]).as_str(), Some("V3"));
    assert_eq!(at(ext_authz, &["failure_mode_allow"]).as_bool(), Some(false));
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["address"].as_str(), Some(sidecar.ip().to_string().as_str()));
    assert_eq!(endpoints[0]["port_value"].as_u64(), Some(u64::from(sidecar.port())));
    // gRPC needs HTTP/2 to the sidecar.
    let protocol = at(
        authz,
        &[
            "typed_extension_protocol_options",
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config",
        ],
    );
    assert!(protocol.get("http2_protocol_options").is_some(), "{protocol:?}");
}

#[test]
fn mapping_example_passes_sidecar_checks() {
    let path = envoy_dir().join("ext-authz.yaml");
    let config = AuthzConfig {
        ext_authz_config: Some(path.clone()),
        ..AuthzConfig::default()
    };

    config.validate().unwrap();
    ExtAuthzMapping::from_file(&path).unwrap();
}

#[test]
fn jwt_payload_reaches_the_sidecar() {
    let config = envoy_config();
    let jwt = filter_of_type(&config, JWT_AUTHN_FILTER);
    let ext_authz = filter_of_type(&config, EXT_AUTHZ_FILTER);
    let mapping: Value =
        serde_yaml::from_str(&std::fs::read_to_string(envoy_dir().join("ext-authz.yaml")).unwrap()).unwrap();

    let payload_keys: Vec<&str> = at(jwt, &["providers"])
        .as_mapping()
        .expect("jwt_authn providers")
        .values()
        .filter_map(|provider| provider["payload_in_metadata"].as_str())
        .collect();
    let namespaces: Vec<&str> = sequence(ext_authz, &["metadata_context_namespaces"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected_key = at(&mapping, &["user", "jwt_claim", "payload_key"]).as_str().unwrap();

    assert!(payload_keys.contains(&expected_key), "{payload_keys:?}");
    assert!(namespaces.contains(&"envoy.filters.http.jwt_authn"), "{namespaces:?}");
    // jwt_authn must run first, so its payload exists when ext_authz sends the check.
    let order: Vec<&str> = http_filters(&config)
        .iter()
        .filter_map(|filter| filter["name"].as_str())
        .collect();
    let position = |name: &str| order.iter().position(|candidate| *candidate == name).unwrap();
    assert!(position("envoy.filters.http.jwt_authn") < position("envoy.filters.http.ext_authz"));
}
