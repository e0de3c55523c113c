//! The mapping from an HTTP request, as Envoy describes it to its external
//! authorization service, to one access check. The user comes from a header
//! or a JWT claim, the resource from the path through route templates, and
//! the permission from the method.
//!
//! The mapping fails closed: a path no template matches, a method without a
//! permission and a request without a user all deny.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use base64::Engine as _;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use serde::Deserialize;
use workteams_domain::{OrganizationId, ResourceId, ResourceTypeRegistry, UserId};

use crate::request::{CheckQuery, OrganizationSelector, ResourceSelector, UserSelector};

/// Namespace under which Envoy's `jwt_authn` filter puts verified payloads.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// The checked mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtAuthzMapping {
    organization: OrganizationSelector,
    user: UserSource,
    /// Upper-case HTTP method to permission, for routes without their own.
    methods: HashMap<String, String>,
    routes: Vec<Route>,
}

/// The source of a request's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSource {
    origin: UserOrigin,
    identifies: UserKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UserOrigin {
    /// A request header set by a trusted proxy, lower case.
    Header(String),
    /// A claim of the payload `jwt_authn` verified and stored in the dynamic
    /// metadata (`payload_in_metadata`).
    ClaimInMetadata {
        namespace: String,
        payload_key: String,
        claim: String,
    },
    /// A claim of the payload `jwt_authn` verified and forwarded as a
    /// base64url header (`forward_payload_header`).
    ClaimInHeader { header: String, claim: String },
}

/// The kind of user reference a value is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKey {
    #[default]
    Login,
    Email,
    Id,
}

/// The kind of resource reference a route's path variable is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKey {
    /// The resource's external id within its organization and type.
    #[default]
    ExternalId,
    Id,
}

/// One route template and the resource it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    template: String,
    segments: Vec<Segment>,
    /// Whether the template ends in `/**`, which matches the path without
    /// it and any deeper path.
    open_ended: bool,
    variable: String,
    resource_type: String,
    identifies: ResourceKey,
    methods: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// The reason a request maps to no check. Each one is a deny, and `code`
/// returns the value of the reason header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    #[error("no route template matches the path")]
    Route,
    #[error("the method {method} has no permission on route {template}")]
    Method { method: String, template: String },
    #[error("the request names no user")]
    MissingUser,
    #[error("the user value is not usable: {0}")]
    InvalidUser(String),
    #[error("the path variable is not a usable resource reference: {0}")]
    InvalidResource(String),
}

impl Unmapped {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Route => "unmapped_route",
            Self::Method { .. } => "unmapped_method",
            Self::MissingUser => "missing_user",
            Self::InvalidUser(_) => "invalid_user",
            Self::InvalidResource(_) => "invalid_resource",
        }
    }
}

/// The parts of Envoy's `CheckRequest` the mapping reads.
#[derive(Debug, Clone, Copy)]
pub struct HttpAttributes<'a> {
    pub method: &'a str,
    /// The request target, query string included.
    pub path: &'a str,
    /// Header names in lower case, as Envoy sends them.
    pub headers: &'a HashMap<String, String>,
    /// Envoy's dynamic metadata by filter namespace.
    pub metadata: Option<&'a HashMap<String, Struct>>,
}

impl ExtAuthzMapping {
    /// Reads and checks a mapping file. The error is a sentence for the
    /// operator.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read the file: {error}"))?;
        Self::from_yaml(&text)
    }

    /// Parses and checks a mapping from YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: MappingFile = serde_yaml::from_str(text).map_err(|error| error.to_string())?;
        file.check()
    }

    /// Maps one HTTP request to an access check.
    pub fn map(&self, request: &HttpAttributes<'_>) -> Result<MappedCheck, Unmapped> {
        let path = request.path.split(['?', '#']).next().unwrap_or_default();
        let (route, value) = self
            .routes
            .iter()
            .find_map(|route| route.matches(path).map(|value| (route, value)))
            .ok_or(Unmapped::Route)?;

        let method = request.method.to_ascii_uppercase();
        let permission = route
            .methods
            .get(&method)
            .or_else(|| self.methods.get(&method))
            .ok_or_else(|| Unmapped::Method {
                method: method.clone(),
                template: route.template.clone(),
            })?;

        let user = self.user.extract(request)?;
        let resource = match route.identifies {
            ResourceKey::ExternalId => ResourceSelector::Key {
                organization: self.organization.clone(),
                resource_type: route.resource_type.clone(),
                external_id: value,
            },
            ResourceKey::Id => ResourceSelector::Id(
                ResourceId::parse(&route.variable, &value)
                    .map_err(|error| Unmapped::InvalidResource(error.to_string()))?,
            ),
        };

        Ok(MappedCheck {
            route: route.template.clone(),
            query: CheckQuery {
                user,
                resource,
                permission: permission.clone(),
            },
        })
    }
}

/// A request mapped to a check, with the template that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedCheck {
    pub route: String,
    pub query: CheckQuery,
}

impl Route {
    /// Returns the decoded value of the route's variable when `path` matches.
    fn matches(&self, path: &str) -> Option<String> {
        let mut parts = path.strip_prefix('/')?.split('/');
        let mut value = None;

        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) => {
                    if part != literal {
                        return None;
                    }
                }
                Segment::Variable(name) => {
                    let decoded = percent_decode(part)?;
                    if decoded.is_empty() || decoded.contains('/') {
                        return None;
                    }
                    if *name == self.variable {
                        value = Some(decoded);
                    }
                }
            }
        }

        let rest_is_empty = parts.next().is_none();
        if !self.open_ended && !rest_is_empty {
            return None;
        }
        value
    }
}

impl UserSource {
    fn extract(&self, request: &HttpAttributes<'_>) -> Result<UserSelector, Unmapped> {
        let value = match &self.origin {
            UserOrigin::Header(header) => request.headers.get(header).cloned(),
            UserOrigin::ClaimInMetadata {
                namespace,
                payload_key,
                claim,
            } => request
                .metadata
                .and_then(|metadata| metadata.get(namespace))
                .and_then(|namespace| namespace.fields.get(payload_key))
                .and_then(|payload| match &payload.kind {
                    Some(Kind::StructValue(payload)) => payload.fields.get(claim),
                    _ => None,
                })
                .map(claim_text)
                .transpose()?,
            UserOrigin::ClaimInHeader { header, claim } => match request.headers.get(header) {
                Some(encoded) => claim_from_payload_header(encoded, claim)?,
                None => None,
            },
        };

        let value = value.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty());
        let Some(value) = value else {
            return Err(Unmapped::MissingUser);
        };
        match self.identifies {
            UserKey::Login => Ok(UserSelector::Login(value)),
            UserKey::Email => Ok(UserSelector::Email(value)),
            UserKey::Id => UserId::parse("user", &value)
                .map(UserSelector::Id)
                .map_err(|error| Unmapped::InvalidUser(error.to_string())),
        }
    }
}

/// Returns a claim's value as text. Strings and whole numbers are accepted.
fn claim_text(value: &Value) -> Result<String, Unmapped> {
    match &value.kind {
        Some(Kind::StringValue(text)) => Ok(text.clone()),
        Some(Kind::NumberValue(number)) if number.fract() == 0.0 && number.is_finite() => Ok(format!("{number:.0}")),
        _ => Err(Unmapped::InvalidUser("the claim is not a string".to_owned())),
    }
}

/// Reads a claim from a base64url-encoded JSON payload.
fn claim_from_payload_header(encoded: &str, claim: &str) -> Result<Option<String>, Unmapped> {
    let invalid = |reason: &str| Unmapped::InvalidUser(format!("the JWT payload header {reason}"));

    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim().trim_end_matches('='))
        .map_err(|_| invalid("is not base64url"))?;
    let payload: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid("is not JSON"))?;
    match payload.get(claim) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
        Some(serde_json::Value::Number(number)) if number.is_u64() || number.is_i64() => Ok(Some(number.to_string())),
        Some(_) => Err(invalid("has a claim that is not a string")),
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' {
            let hex = text.get(position + 1..position + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            position += 3;
        } else {
            decoded.push(bytes[position]);
            position += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

// === The file ===

/// Keys of the mapping file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    /// Organization name of the routes' resources.
    organization: Option<String>,
    /// Organization id, instead of the name.
    organization_id: Option<String>,
    user: UserFile,
    #[serde(default)]
    methods: BTreeMap<String, String>,
    routes: Vec<RouteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    header: Option<String>,
    jwt_claim: Option<ClaimFile>,
    #[serde(default)]
    identifies: UserKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimFile {
    claim: String,
    /// Dynamic metadata namespace; `jwt_authn`'s by default.
    metadata_namespace: Option<String>,
    /// The `payload_in_metadata` name configured in `jwt_authn`.
    payload_key: Option<String>,
    /// The `forward_payload_header` configured in `jwt_authn`, instead of
    /// the metadata.
    payload_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    template: String,
    resource_type: String,
    /// The template variable naming the resource; the only one by default.
    variable: Option<String>,
    #[serde(default)]
    identifies: ResourceKey,
    #[serde(default)]
    methods: BTreeMap<String, String>,
}

impl MappingFile {
    fn check(self) -> Result<ExtAuthzMapping, String> {
        let organization = match (self.organization, self.organization_id) {
            (Some(name), None) if !name.trim().is_empty() => OrganizationSelector::Name(name),
            (None, Some(id)) => OrganizationSelector::Id(
                OrganizationId::parse("organization_id", &id).map_err(|error| error.to_string())?,
            ),
            _ => return Err("set exactly one of organization (a name) and organization_id".to_owned()),
        };
        let user = self.user.check()?;
        let methods = check_methods("methods", self.methods)?;
        if self.routes.is_empty() {
            return Err("routes: list at least one route; every other path is denied".to_owned());
        }

        let registry = ResourceTypeRegistry::with_builtins(Vec::new()).map_err(|error| error.to_string())?;
        let routes = self
            .routes
            .into_iter()
            .enumerate()
            .map(|(position, route)| route.check(&methods, &registry).map_err(|error| format!("routes[{position}]: {error}")))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(ExtAuthzMapping {
            organization,
            user,
            methods,
            routes,
        })
    }
}

impl UserFile {
    fn check(self) -> Result<UserSource, String> {
        let origin = match (self.header, self.jwt_claim) {
            (Some(header), None) => UserOrigin::Header(header_name("user.header", &header)?),
            (None, Some(claim)) => claim.check()?,
            _ => return Err("user: set exactly one of header and jwt_claim".to_owned()),
        };
        Ok(UserSource {
            origin,
            identifies: self.identifies,
        })
    }
}

impl ClaimFile {
    fn check(self) -> Result<UserOrigin, String> {
        if self.claim.trim().is_empty() {
            return Err("user.jwt_claim.claim: name the claim, such as sub".to_owned());
        }
        match (self.payload_header, self.payload_key) {
            (Some(header), None) if self.metadata_namespace.is_none() => Ok(UserOrigin::ClaimInHeader {
                header: header_name("user.jwt_claim.payload_header", &header)?,
                claim: self.claim,
            }),
            (None, Some(payload_key)) => Ok(UserOrigin::ClaimInMetadata {
                namespace: self.metadata_namespace.unwrap_or_else(|| JWT_AUTHN_NAMESPACE.to_owned()),
                payload_key,
                claim: self.claim,
            }),
            _ => Err(
                "user.jwt_claim: set payload_key (jwt_authn's payload_in_metadata) or payload_header \
                 (its forward_payload_header), not both"
                    .to_owned(),
            ),
        }
    }
}

impl RouteFile {
    fn check(self, default_methods: &HashMap<String, String>, registry: &ResourceTypeRegistry) -> Result<Route, String> {
        let (segments, open_ended) = parse_template(&self.template)?;
        let variables: Vec<&str> = segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Variable(name) => Some(name.as_str()),
                Segment::Literal(_) => None,
            })
            .collect();
        let variable = match (self.variable, variables.as_slice()) {
            (Some(name), _) if variables.contains(&name.as_str()) => name,
            (Some(name), _) => return Err(format!("variable {name:?} is not in the template {}", self.template)),
            (None, [only]) => (*only).to_owned(),
            (None, _) => {
                return Err(format!(
                    "the template {} has {} variables; name the resource's one with variable",
                    self.template,
                    variables.len()
                ));
            }
        };

        let methods = check_methods("methods", self.methods)?;
        // Types the directory adds by configuration are unknown here; a
        // permission they lack denies at check time.
        if let Some(definition) = registry.get(&self.resource_type) {
            let effective = default_methods
                .iter()
                .filter(|(method, _)| !methods.contains_key(*method))
                .chain(&methods);
            for (method, permission) in effective {
                if !definition.permissions.contains(permission) {
                    return Err(format!(
                        "{method} maps to {permission:?}, which {} does not have; it has {}. \
                         Map the method in the route's methods",
                        self.resource_type,
                        definition.permissions.join(", ")
                    ));
                }
            }
        }

        Ok(Route {
            template: self.template,
            segments,
            open_ended,
            variable,
            resource_type: self.resource_type,
            identifies: self.identifies,
            methods,
        })
    }
}

/// Splits `/a/{b}/c` into segments; a final `/**` matches any remainder.
fn parse_template(template: &str) -> Result<(Vec<Segment>, bool), String> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(format!("template {template:?} must start with /"));
    };
    let (rest, open_ended) = match rest.strip_suffix("/**") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };

    let mut segments = Vec::new();
    for part in rest.split('/') {
        let segment = match part.strip_prefix('{').and_then(|part| part.strip_suffix('}')) {
            Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Segment::Variable(name.to_owned())
            }
            Some(_) => return Err(format!("template {template:?}: a variable is {{name}} with letters, digits or _")),
            None if part.is_empty() || part.contains(['{', '}', '*']) => {
                return Err(format!(
                    "template {template:?}: segments are literal text or {{name}}, and only a final /** is a wildcard"
                ));
            }
            None => Segment::Literal(part.to_owned()),
        };
        segments.push(segment);
    }
    Ok((segments, open_ended))
}

fn check_methods(setting: &str, methods: BTreeMap<String, String>) -> Result<HashMap<String, String>, String> {
    methods
        .into_iter()
        .map(|(method, permission)| {
            let valid = !method.is_empty() && method.chars().all(|c| c.is_ascii_alphabetic());
            if !valid {
                return Err(format!("{setting}: {method:?} is not an HTTP method"));
            }
            if permission.trim().is_empty() {
                return Err(format!("{setting}: {method} has an empty permission"));
            }
            Ok((method.to_ascii_uppercase(), permission))
        })
        .collect()
}

fn header_name(setting: &str, name: &str) -> Result<String, String> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!("{setting}: {name:?} is not a header name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = "
organization: acme
user:
  header: X-User-Id
methods:
  GET: read
  POST: send
routes:
  - template: /mailboxes/{mailbox}/messages
    resource_type: mail.mailbox
    methods:
      PUT: manage_rules
  - template: /mailboxes/{mailbox}/messages/**
    resource_type: mail.mailbox
";

    fn attributes<'a>(method: &'a str, path: &'a str, headers: &'a HashMap<String, String>) -> HttpAttributes<'a> {
        HttpAttributes {
            method,
            path,
            headers,
            metadata: None,
        }
    }

    fn user_header(login: &str) -> HashMap<String, String> {
        HashMap::from([("x-user-id".to_owned(), login.to_owned())])
    }

    #[test]
    fn variable_becomes_external_id() {
        let mapping = ExtAuthzMapping::from_yaml(MAPPING).unwrap();
        let headers = user_header("ada");

        let mapped = mapping.map(&attributes("GET", "/mailboxes/support%40example.com/messages?x=1", &headers)).unwrap();

        assert_eq!(mapped.query.user, UserSelector::Login("ada".to_owned()));
        assert_eq!(mapped.query.permission, "read");
        assert_eq!(
            mapped.query.resource,
            ResourceSelector::Key {
                organization: OrganizationSelector::Name("acme".to_owned()),
                resource_type: "mail.mailbox".to_owned(),
                external_id: "support@example.com".to_owned(),
            }
        );
    }

    #[test]
    fn open_template_matches_deeper_paths() {
        let mapping = ExtAuthzMapping::from_yaml(MAPPING).unwrap();
        let headers = user_header("ada");
        let mapped = mapping.map(&attributes("POST", "/mailboxes/a/messages/42", &headers)).unwrap();
        assert_eq!(mapped.route, "/mailboxes/{mailbox}/messages/**");
        assert_eq!(mapped.query.permission, "send");
    }

    #[test]
    fn route_methods_override() {
        let mapping = ExtAuthzMapping::from_yaml(MAPPING).unwrap();
        let headers = user_header("ada");
        let mapped = mapping.map(&attributes("put", "/mailboxes/a/messages", &headers)).unwrap();
        assert_eq!(mapped.query.permission, "manage_rules");
    }

    #[test]
    fn unmapped_requests_deny() {
        let mapping = ExtAuthzMapping::from_yaml(MAPPING).unwrap();
        let headers = user_header("ada");
        let none = HashMap::new();

        let route = mapping.map(&attributes("GET", "/mailboxes/a", &headers)).unwrap_err();
        let method = mapping.map(&attributes("PATCH", "/mailboxes/a/messages", &headers)).unwrap_err();
        let user = mapping.map(&attributes("GET", "/mailboxes/a/messages", &none)).unwrap_err();
        let slash = mapping.map(&attributes("GET", "/mailboxes/a%2Fb/messages", &headers)).unwrap_err();

        assert_eq!(route.code(), "unmapped_route");
        assert_eq!(method.code(), "unmapped_method");
        assert_eq!(user.code(), "missing_user");
        assert_eq!(slash.code(), "unmapped_route");
    }

    #[test]
    fn claim_read_from_metadata() {
        let mapping = ExtAuthzMapping::from_yaml(
            "organization: acme\nuser:\n  jwt_claim:\n    claim: preferred_username\n    payload_key: jwt_payload\n\
             methods: {GET: read}\nroutes:\n  - {template: '/m/{m}', resource_type: mail.mailbox}\n",
        )
        .unwrap();
        let claim = Value {
            kind: Some(Kind::StringValue("ada".to_owned())),
        };
        let payload = Value {
            kind: Some(Kind::StructValue(Struct {
                fields: HashMap::from([("preferred_username".to_owned(), claim)]),
            })),
        };
        let metadata = HashMap::from([(
            JWT_AUTHN_NAMESPACE.to_owned(),
            Struct {
                fields: HashMap::from([("jwt_payload".to_owned(), payload)]),
            },
        )]);
        let headers = HashMap::new();

        let request = HttpAttributes {
            metadata: Some(&metadata),
            ..attributes("GET", "/m/x", &headers)
        };
        let mapped = mapping.map(&request).unwrap();

        assert_eq!(mapped.query.user, UserSelector::Login("ada".to_owned()));
    }

    #[test]
    fn claim_read_from_payload_header() {
        let mapping = ExtAuthzMapping::from_yaml(
            "organization: acme\nuser:\n  jwt_claim: {claim: email, payload_header: x-jwt-payload}\n  identifies: email\n\
             methods: {GET: read}\nroutes:\n  - {template: '/m/{m}', resource_type: mail.mailbox}\n",
        )
        .unwrap();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"email":"ada@example.com"}"#);
        let headers = HashMap::from([("x-jwt-payload".to_owned(), payload)]);

        let mapped = mapping.map(&attributes("GET", "/m/x", &headers)).unwrap();

        assert_eq!(mapped.query.user, UserSelector::Email("ada@example.com".to_owned()));
    }

    #[test]
    fn bad_files_rejected() {
        let cases = [
            ("user: {header: x}\nroutes: []\n", "organization"),
            ("organization: a\nuser: {header: x}\nroutes: []\n", "routes"),
            ("organization: a\nuser: {}\nroutes: [{template: '/a/{b}', resource_type: t}]\n", "user"),
            ("organization: a\nuser: {header: x}\nroutes: [{template: 'a/{b}', resource_type: t}]\n", "start with /"),
            ("organization: a\nuser: {header: x}\nroutes: [{template: '/a/{b}/{c}', resource_type: t}]\n", "variable"),
            ("organization: a\nuser: {header: x}\nroutes: [{template: '/a/*', resource_type: t}]\n", "wildcard"),
            (
                "organization: a\nuser: {header: x}\nroutes: [{template: '/a/{b}', resource_type: mail.mailbox, methods: {GET: fly}}]\n",
                "fly",
            ),
            ("organization: a\nuser: {header: x}\nroute: []\n", "unknown field"),
        ];
        for (text, expected) in cases {
            let error = ExtAuthzMapping::from_yaml(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
