//! The server layers in front of a real tonic server: load shedding,
//! deadlines, request ids and the metrics they record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_prost::ProstCodec;
use workteams_telemetry::layers::{DeadlineLayer, REQUEST_ID_HEADER};
use workteams_telemetry::{CallLimits, Metrics, ServerLayers, serve_metrics};

const WAIT_PATH: &str = "/workteams.test.Waiter/Wait";

/// A one-method gRPC service whose request text selects the behaviour:
/// `sleep:MILLIS` responds after that long, `fail` returns NOT_FOUND.
#[derive(Clone)]
struct Waiter;

impl NamedService for Waiter {
    const NAME: &'static str = "workteams.test.Waiter";
}

impl tower::Service<http::Request<Body>> for Waiter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let codec = ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            let method =
                tower::service_fn(|request: tonic::Request<HealthCheckRequest>| async move {
                    let command = request.into_inner().service;
                    if command == "fail" {
                        return Err(Status::not_found("asked to fail"));
                    }
                    if let Some(millis) = command.strip_prefix("sleep:") {
                        let millis: u64 = millis.parse().unwrap();
                        tokio::time::sleep(Duration::from_millis(millis)).await;
                    }
                    Ok(tonic::Response::new(HealthCheckResponse { status: 1 }))
                });
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct TestServer {
    channel: Channel,
    metrics_address: SocketAddr,
}

async fn start(limits: CallLimits) -> TestServer {
    let metrics = Metrics::new().unwrap();

    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_address = metrics_listener.local_addr().unwrap();
    tokio::spawn(serve_metrics(
        metrics_listener,
        metrics.clone(),
        std::future::pending(),
    ));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        Server::builder()
            .layer(ServerLayers::new(metrics, limits))
            .add_service(Waiter)
            .serve_with_incoming(incoming),
    );

    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    TestServer {
        channel,
        metrics_address,
    }
}

fn limits(concurrency_limit: usize, default_deadline: Duration) -> CallLimits {
    CallLimits {
        concurrency_limit,
        default_deadline,
    }
}

async fn wait(
    channel: &Channel,
    request: tonic::Request<HealthCheckRequest>,
) -> Result<tonic::Response<HealthCheckResponse>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    client
        .unary(
            request,
            PathAndQuery::from_static(WAIT_PATH),
            ProstCodec::default(),
        )
        .await
}

fn command(text: &str) -> tonic::Request<HealthCheckRequest> {
    tonic::Request::new(HealthCheckRequest {
        service: text.to_owned(),
    })
}

async fn scrape(address: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn call_over_limit_shed() {
    let server = start(limits(2, Duration::from_secs(30))).await;

    let slow: Vec<_> = (0..2)
        .map(|_| {
            let channel = server.channel.clone();
            tokio::spawn(async move { wait(&channel, command("sleep:1000")).await })
        })
        .collect();
    // Both slow calls must hold their slot before the third call arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let shed = wait(&server.channel, command("")).await.unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted);

    for call in slow {
        assert!(call.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn slot_freed_after_call() {
    let server = start(limits(1, Duration::from_secs(30))).await;

    wait(&server.channel, command("sleep:10")).await.unwrap();
    let second = wait(&server.channel, command("")).await;

    assert!(second.is_ok());
}

#[tokio::test]
async fn default_deadline_ends_call() {
    let server = start(limits(8, Duration::from_millis(100))).await;

    let error = wait(&server.channel, command("sleep:5000"))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Code::DeadlineExceeded);
}

// Called without a network: a tonic client enforces its own grpc-timeout
// too, and would end the call as CANCELLED at the same moment.
#[tokio::test]
async fn shorter_client_timeout_honoured() {
    use tower::{Layer, ServiceExt};
    let handler = tower::service_fn(|_: http::Request<()>| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, Infallible>(http::Response::new(Body::default()))
    });
    let service = DeadlineLayer::new(Duration::from_secs(60)).layer(handler);
    let request = http::Request::builder()
        .header("grpc-timeout", "100m")
        .body(())
        .unwrap();

    let response = service.oneshot(request).await.unwrap();

    let status = Status::from_header_map(response.headers()).unwrap();
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn client_timeout_stops_server_call() {
    let server = start(limits(8, Duration::from_secs(30))).await;
    let mut request = command("sleep:5000");
    request.set_timeout(Duration::from_millis(100));
    wait(&server.channel, request).await.unwrap_err();
    // Well before the handler's 5 s: the server's deadline or the client's
    // stream reset must have ended the call by then.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let page = scrape(server.metrics_address, "/metrics").await;

    let labels = r#"grpc_method="Wait",grpc_service="workteams.test.Waiter""#;
    let exceeded =
        format!(r#"grpc_server_handled_total{{grpc_code="DEADLINE_EXCEEDED",{labels}}} 1"#);
    let cancelled = format!(r#"grpc_server_handled_total{{grpc_code="CANCELLED",{labels}}} 1"#);
    assert!(
        page.contains(&exceeded) || page.contains(&cancelled),
        "{page}"
    );
}

#[tokio::test]
async fn abandoned_call_counted_cancelled() {
    let server = start(limits(8, Duration::from_secs(30))).await;
    let channel = server.channel.clone();
    let call = tokio::spawn(async move { wait(&channel, command("sleep:5000")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.abort();
    // The server sees the stream reset shortly after the client drops it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let page = scrape(server.metrics_address, "/metrics").await;

    assert!(
        page.contains(r#"grpc_server_handled_total{grpc_code="CANCELLED",grpc_method="Wait",grpc_service="workteams.test.Waiter"} 1"#),
        "{page}"
    );
}

#[tokio::test]
async fn request_id_echoed() {
    let server = start(limits(8, Duration::from_secs(30))).await;
    let mut request = command("");
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "req-1234".parse().unwrap());

    let response = wait(&server.channel, request).await.unwrap();

    let echoed = response.metadata().get(REQUEST_ID_HEADER).unwrap();
    assert_eq!(echoed, "req-1234");
}

#[tokio::test]
async fn request_id_generated() {
    let server = start(limits(8, Duration::from_secs(30))).await;

    let response = wait(&server.channel, command("")).await.unwrap();

    let generated = response.metadata().get(REQUEST_ID_HEADER).unwrap();
    assert!(uuid::Uuid::parse_str(generated.to_str().unwrap()).is_ok());
}

#[tokio::test]
async fn shed_response_has_request_id() {
    let server = start(limits(0, Duration::from_secs(30))).await;
    let mut request = command("");
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "req-shed".parse().unwrap());

    let status = wait(&server.channel, request).await.unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.metadata().get(REQUEST_ID_HEADER).unwrap(),
        "req-shed"
    );
}

#[tokio::test]
async fn metrics_count_by_code() {
    let server = start(limits(8, Duration::from_secs(30))).await;
    for _ in 0..3 {
        wait(&server.channel, command("")).await.unwrap();
    }
    wait(&server.channel, command("fail")).await.unwrap_err();

    let page = scrape(server.metrics_address, "/metrics").await;

    let labels = r#"grpc_method="Wait",grpc_service="workteams.test.Waiter""#;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains(&format!(
            r#"grpc_server_handled_total{{grpc_code="OK",{labels}}} 3"#
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"grpc_server_handled_total{{grpc_code="NOT_FOUND",{labels}}} 1"#
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"grpc_server_handling_seconds_count{{grpc_code="OK",{labels}}} 3"#
        )),
        "{page}"
    );
}

#[tokio::test]
async fn metrics_count_shed_calls() {
    let server = start(limits(0, Duration::from_secs(30))).await;
    wait(&server.channel, command("")).await.unwrap_err();

    let page = scrape(server.metrics_address, "/metrics").await;

    assert!(
        page.contains(r#"grpc_server_handled_total{grpc_code="RESOURCE_EXHAUSTED",grpc_method="Wait",grpc_service="workteams.test.Waiter"} 1"#),
        "{page}"
    );
}

#[tokio::test]
async fn metrics_count_deadline_exceeded() {
    let server = start(limits(8, Duration::from_millis(50))).await;
    wait(&server.channel, command("sleep:2000"))
        .await
        .unwrap_err();

    let page = scrape(server.metrics_address, "/metrics").await;

    assert!(
        page.contains(r#"grpc_server_handled_total{grpc_code="DEADLINE_EXCEEDED",grpc_method="Wait",grpc_service="workteams.test.Waiter"} 1"#),
        "{page}"
    );
}

#[tokio::test]
async fn unknown_metrics_path_not_found() {
    let server = start(limits(8, Duration::from_secs(30))).await;

    let page = scrape(server.metrics_address, "/other").await;

    assert!(page.starts_with("HTTP/1.1 404"), "{page}");
}

#[tokio::test]
async fn unusable_request_id_not_echoed() {
    let server = start(limits(8, Duration::from_secs(30))).await;
    let mut request = command("");
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "x".repeat(200).parse().unwrap());

    let response = wait(&server.channel, request).await.unwrap();

    assert!(response.metadata().get(REQUEST_ID_HEADER).is_none());
}
