//! `workteams up`: the team directory and the authorization sidecar in one
//! process, each on its own gRPC listener, until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use workteams_authz::AuthzConfig;
use workteams_auth::DevCredentials;
use workteams_directory::{Authentication, DirectoryConfig};

use crate::cli::{GlobalArgs, UpArgs};
use crate::error::CliError;
use crate::output::print_text;

/// Both services, bound and running.
pub struct RunningServices {
    pub directory_address: SocketAddr,
    pub authz_address: SocketAddr,
    stop: watch::Sender<bool>,
    directory: tokio::task::JoinHandle<Result<(), workteams_directory::ServeError>>,
    authz: tokio::task::JoinHandle<Result<(), workteams_authz::ServeError>>,
}

/// Binds both listeners and starts both services. The sidecar follows the
/// directory started here, sending the token in `sidecar_token_file` when
/// the directory requires one.
pub async fn start_services(
    mut directory_config: DirectoryConfig,
    directory_listen: SocketAddr,
    authz_listen: SocketAddr,
    sidecar_token_file: Option<&Path>,
) -> Result<RunningServices, CliError> {
    let directory_listener = TcpListener::bind(directory_listen).await.map_err(|error| {
        CliError::Serve(format!("cannot listen on {directory_listen}: {error}"))
    })?;
    let authz_listener = TcpListener::bind(authz_listen)
        .await
        .map_err(|error| CliError::Serve(format!("cannot listen on {authz_listen}: {error}")))?;
    let directory_address = local_address(&directory_listener)?;
    let authz_address = local_address(&authz_listener)?;
    directory_config.listen_address = directory_address;

    let mut authz_args = vec![
        "workteams-authz".to_owned(),
        "--listen".to_owned(),
        authz_address.to_string(),
        "--directory-address".to_owned(),
        format!("http://{directory_address}"),
    ];
    if let Some(path) = sidecar_token_file {
        authz_args.push("--directory-token-file".to_owned());
        authz_args.push(path.display().to_string());
    }
    let authz_config = AuthzConfig::try_parse_from(authz_args)
        .map_err(|error| CliError::Serve(format!("invalid sidecar settings: {error}")))?;

    let (stop, stopped) = watch::channel(false);
    let directory = tokio::spawn(workteams_directory::serve(
        directory_config,
        directory_listener,
        wait_for_stop(stopped.clone()),
    ));
    let authz = tokio::spawn(workteams_authz::serve(
        authz_config,
        authz_listener,
        wait_for_stop(stopped),
    ));

    Ok(RunningServices {
        directory_address,
        authz_address,
        stop,
        directory,
        authz,
    })
}

impl RunningServices {
    /// Asks both services to stop and waits until they have.
    pub async fn stop(self) -> Result<(), CliError> {
        let _ = self.stop.send(true);
        let directory = self.directory.await;
        let authz = self.authz.await;
        check_exit("the directory", directory)?;
        check_exit("the authorization sidecar", authz)
    }
}

fn check_exit<E: std::fmt::Display>(
    service: &str,
    outcome: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), CliError> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(CliError::Serve(format!(
            "{service} stopped with an error: {error}"
        ))),
        Err(error) => Err(CliError::Serve(format!("{service} failed: {error}"))),
    }
}

fn local_address(listener: &TcpListener) -> Result<SocketAddr, CliError> {
    listener
        .local_addr()
        .map_err(|error| CliError::Serve(format!("cannot read the listen address: {error}")))
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Runs `workteams up` until Ctrl-C or SIGTERM, or until a service fails.
pub async fn up(global: &GlobalArgs, args: &UpArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut config = DirectoryConfig::with_data_dir(global.data_dir.clone());
    if let Some(url) = &args.database_url {
        config.database_url = url.clone();
    }
    // Local use gets a development key and an owner token in the data
    // folder, which every later command finds on its own.
    let credentials = DevCredentials::ensure(&global.data_dir)
        .map_err(|error| CliError::Serve(format!("cannot create development credentials: {error}")))?;
    config.authentication = Authentication::Tokens(credentials.settings());
    let database = if config.uses_sqlite() {
        config.database_url.clone()
    } else {
        "the PostgreSQL database given by --database-url".to_owned()
    };

    let mut services = start_services(
        config,
        args.directory_listen,
        args.authz_listen,
        Some(&credentials.token_file),
    )
    .await?;
    print_text(
        out,
        &format!(
            "team directory listening on {}\nauthorization sidecar listening on {}\ndatabase: {database}\n\
             press Ctrl-C to stop\n",
            services.directory_address, services.authz_address
        ),
    )?;
    let _ = out.flush();

    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("stop requested; stopping both services");
        }
        outcome = &mut services.directory => {
            let _ = services.stop.send(true);
            let _ = (&mut services.authz).await;
            check_exit("the directory", outcome)?;
            return Err(CliError::Serve("the directory stopped unexpectedly".to_owned()));
        }
        outcome = &mut services.authz => {
            let _ = services.stop.send(true);
            let _ = (&mut services.directory).await;
            check_exit("the authorization sidecar", outcome)?;
            return Err(CliError::Serve("the authorization sidecar stopped unexpectedly".to_owned()));
        }
    }

    services.stop().await?;
    print_text(out, "stopped\n")
}

/// Completes on Ctrl-C, or on SIGTERM where there is one.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
