//! `ctrace serve`: the compactor as a long-running service, an HTTP hook target, a JSON API
//! over the views and the index, and a Server-Sent Events stream of new records. The API is
//! described in `docs/api.md` and by the OpenAPI document served at `/api/openapi.json`.
//!
//! Threads: a tokio runtime answers HTTP; the compactor loop
//! ([`crate::compactor::service::run`]) runs on its own std thread, woken by the inbox watcher
//! and by every HTTP hook. Invariants:
//! - the compactor thread is the only writer of the views and the index; requests open the
//!   views per request on the blocking pool and only read;
//! - `POST /ingest/hook` answers 200 only after [`crate::ingest::hook::store_payload`] has put
//!   the payload in a file the next seal reads (the same path as `ctrace hook`);
//! - a stream client is fed from the log by offset through a bounded queue: memory does not
//!   grow with a slow client (it is dropped after [`ServeOptions::stream_send_timeout`]);
//! - on SIGINT/SIGTERM the streams end, the server stops accepting, the compactor's pass in
//!   progress commits, and [`serve`] returns;
//! - connections are HTTP/1.1 (keep-alive), at most [`ServeOptions::max_connections`] at once
//!   (more wait in the listen backlog); one that takes longer than
//!   [`ServeOptions::header_read_timeout`] to send a request head, or idles that long between
//!   requests, is closed; each is checked once, before any HTTP is read
//!   (`security::Security::admit`).

mod api;
mod assets;
mod cast;
mod error;
mod hook;
mod login;
mod otlp;
mod peer;
mod search;
pub mod security;
mod stream;
mod tasks;
mod telemetry;
mod token;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::watch;

pub use self::error::ApiError;
use crate::compactor::service::{self, ServiceOptions, Trigger};
use crate::compactor::{Compactor, Consumer};
use crate::log::Store;

/// The consumers of the log that every compactor of ctrace keeps in step, in the order a pass
/// updates them: the views, then the full-text index. The service's compactor and the command
/// line's ([`crate::cli::compactor`]) use this one list.
pub static CONSUMERS: [&dyn Consumer; 2] = [
    &crate::views::consumer::Views,
    &crate::index::consumer::Index,
];

/// The default address of `ctrace serve` (loopback; port 4318 stays free for an OpenTelemetry
/// Collector).
pub const DEFAULT_BIND: &str = "127.0.0.1:7317";

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0: any free port, reported to `on_bound`).
    pub bind: SocketAddr,
    /// Watch the inbox with inotify (otherwise passes run on HTTP hooks and the idle timer),
    /// and, with `transcripts`, Claude Code's transcript directories.
    pub watch: bool,
    /// With `watch`: watch Claude Code's transcript directories
    /// ([`crate::ingest::watch::projects_dirs`]): transcripts already there when the service
    /// starts, and lines written later, are tailed into the store without hooks (default
    /// true; the demo turns it off so its store holds only the demo).
    pub transcripts: bool,
    /// Largest request body accepted, bytes (default 64 MiB); larger ones get 413. Hook
    /// payloads above `storage.max_record_bytes` but within this are stored truncated, as
    /// `ctrace hook` stores them.
    pub max_body_bytes: usize,
    /// OTLP requests are answered 429 (with `Retry-After`) while the unsealed inbox holds more
    /// than this many bytes (default 256 MiB): the compactor is behind, and the exporter
    /// retries later rather than the inbox growing without bound.
    pub max_inbox_bytes: u64,
    /// Largest OTLP request body once decompressed, bytes (default 16 MiB); a larger one, as
    /// sent or decompressed, gets 413.
    pub max_otlp_body_bytes: usize,
    /// Most bytes of rendered records in one page of `/api/sessions/{id}/records` (default
    /// 32 MiB; a page holds at least one record, however large).
    pub max_page_bytes: usize,
    /// Most stream clients at once (default 256); one more gets 503 with `Retry-After`.
    pub max_stream_clients: usize,
    /// Most bytes of rendered records read in one step of a stream client or of the shared
    /// reader (default 1 MiB; a step reads at least one record).
    pub stream_batch_bytes: usize,
    /// Most bytes of events a stream client may have queued (default 1 MiB; a larger event is
    /// queued alone): with `max_stream_clients`, what slow clients can make the service hold.
    pub stream_queue_bytes: usize,
    /// Events a stream client may have queued (default 256).
    pub stream_queue: usize,
    /// How long a stream client may leave its queue full before it is dropped (default 10 s).
    pub stream_send_timeout: Duration,
    /// Records read from the log per step of a stream client (default 256).
    pub stream_batch: usize,
    /// Threads that read the store for requests and stream clients (default 8). Each reading
    /// thread keeps its own decompression context and buffers, so this bounds the memory that
    /// many concurrent requests or stream clients can make the service hold; more requests
    /// queue for a thread.
    pub blocking_threads: usize,
    /// Timing of the compactor loop.
    pub service: ServiceOptions,
    /// Require the token (`<store>/serve.token`) on a loopback address too; a non-loopback
    /// address always requires it.
    pub token: bool,
    /// How long a client may take to send a request's head, and may leave its connection idle
    /// between requests, before it is closed (default 10 s; slowloris).
    pub header_read_timeout: Duration,
    /// Connections served at once (default 512); further ones wait in the listen backlog until
    /// one closes.
    pub max_connections: usize,
    /// More `Host` values accepted, lowercase `NAME[:PORT]` as the browser sends them
    /// (`--allow-host`: an SSH tunnel's `localhost:8000`, a reverse proxy's name); checked by
    /// [`security::parse_allowed_host`].
    pub allow_hosts: Vec<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7317)),
            watch: true,
            transcripts: true,
            max_body_bytes: 64 << 20,
            max_inbox_bytes: 256 << 20,
            max_otlp_body_bytes: 16 << 20,
            max_page_bytes: 32 << 20,
            max_stream_clients: 256,
            stream_batch_bytes: 1 << 20,
            stream_queue_bytes: 1 << 20,
            stream_queue: 256,
            stream_send_timeout: Duration::from_secs(10),
            stream_batch: 256,
            blocking_threads: 8,
            service: ServiceOptions::default(),
            token: false,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            allow_hosts: Vec::new(),
        }
    }
}

/// Errors that stop the service (request errors are [`ApiError`]s, answered and logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tokio runtime, the signal handlers or the compactor thread could not start, or the
    /// server failed while accepting.
    #[error("running the HTTP server")]
    Runtime(#[source] std::io::Error),
    /// The access token could not be read or made (a non-loopback address, or `token`).
    #[error("the access token")]
    Token(#[from] security::TokenError),
    /// The inbox watcher could not start.
    #[error("starting the inbox watcher")]
    Watch(#[from] service::WatchError),
    /// `[forward]` names an unusable endpoint, or its checkpoint is unreadable.
    #[error("forwarding")]
    Forward(#[from] crate::otlp::forward::ForwardError),
}

/// What every request handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) trigger: Arc<Trigger>,
    /// The records of each compaction pass, read once for every stream client
    /// ([`stream::hub`]).
    pub(crate) live: tokio::sync::broadcast::Sender<Arc<stream::LiveBatch>>,
    /// Set to `true` when the service stops (stream clients end).
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) options: Arc<ServeOptions>,
}

/// Where the service listens, told to `on_bound` of [`serve`].
#[derive(Debug, Clone)]
pub struct Bound {
    /// The bound address.
    pub addr: SocketAddr,
    /// A login link of the page (`http://HOST:PORT/login?code=...`, the code single-use and
    /// valid for 10 minutes) when the browser may need one: the token is required of every
    /// connection, or this system cannot tell which user a local connection comes from.
    pub login_url: Option<String>,
    /// The checks, for more login links.
    security: Arc<security::Security>,
}

impl Bound {
    /// Where a service with `security` listens on `addr`, with a login link when a browser may
    /// need one (every connection needs a credential, or the socket tables cannot be read:
    /// logged).
    fn new(addr: SocketAddr, security: &Arc<security::Security>) -> Self {
        let peers_known = peer::tables_readable();
        if !security.every_connection() && !peers_known {
            tracing::warn!(
                "cannot read {}: local connections must show the token or log in",
                peer::TABLES.join(" or ")
            );
        }
        let login_url = if security.every_connection() || !peers_known {
            login_link(security, addr)
        } else {
            None
        };
        Self {
            addr,
            login_url,
            security: Arc::clone(security),
        }
    }

    /// Another login link with a code of its own (for a browser started by the caller, so that
    /// the printed [`Bound::login_url`] stays unused), under the same conditions as
    /// `login_url`; `None` also when the system's random source fails (logged).
    pub fn new_login_url(&self) -> Option<String> {
        self.login_url.as_ref()?;
        login_link(&self.security, self.addr)
    }
}

/// A login link with a new code for `addr`; `None` when there is no token to log in with or
/// the random source fails (logged).
fn login_link(security: &security::Security, addr: SocketAddr) -> Option<String> {
    if !security.has_token() {
        return None;
    }
    match security.logins().new_code() {
        Ok(code) => Some(security::login_url(addr, &code)),
        Err(error) => {
            tracing::error!(%error, "cannot make a login code");
            None
        }
    }
}

/// The router of the service over `state`, behind the checks of `security`.
fn router(state: AppState, security: Arc<security::Security>) -> Router {
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let limit = state.options.max_body_bytes;
    Router::new()
        .route("/ingest/hook", post(hook::ingest))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/traces", post(otlp::traces))
        .route("/api/health", get(api::health))
        .route("/api/stats", get(api::stats))
        .route("/api/sources", get(search::sources))
        .route("/api/search", get(search::search))
        .route("/api/sessions", get(api::sessions))
        .route("/api/sessions/{id}", get(api::session))
        .route("/api/sessions/{id}/timeline", get(api::timeline))
        .route("/api/sessions/{id}/tree", get(api::tree))
        .route("/api/sessions/{id}/records", get(api::records))
        .route("/api/sessions/{id}/cast", get(cast::cast))
        .route("/api/sessions/{id}/telemetry", get(telemetry::telemetry))
        .route("/api/tasks", get(api::tasks))
        .route("/api/tasks/{id}", get(tasks::task))
        .route("/api/tasks/{id}/tree", get(tasks::task_tree))
        .route("/api/cost", get(api::cost))
        .route("/api/stream", get(stream::stream))
        .route("/api/openapi.json", get(api::openapi))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .fallback(api::not_found)
        .merge(
            Router::new()
                .route("/login", get(login::page).post(login::submit))
                .with_state(Arc::clone(&security)),
        )
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            security,
            security::guard,
        ))
        .layer(axum::middleware::from_fn(security::response_headers))
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: a query can hold a login code or a search.
                .make_span_with(|request: &axum::extract::Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// Runs the service on `store` until SIGINT or SIGTERM: reads or makes the token, binds
/// `options.bind`, calls `on_bound` with the bound address (and a single-use login link when a
/// browser may need one: see [`Bound::login_url`]), starts the compactor thread and answers
/// requests. On a signal, stream clients are ended, the server stops accepting and waits for
/// open connections to finish their requests, the compactor finishes (and commits) the pass in
/// progress, and this returns `Ok`.
///
/// # Errors
/// [`ServeError::Token`] when the token file is unsafe or cannot be made and every connection
/// needs it (a non-loopback address, or `options.token`); [`ServeError::Bind`] when
/// the address is taken or not allowed; [`ServeError::Watch`] when
/// inotify refuses the watch; [`ServeError::Runtime`] when the runtime or a thread cannot
/// start.
pub fn serve(
    store: Store,
    options: ServeOptions,
    on_bound: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    let every_connection = options.token || !options.bind.ip().is_loopback();
    let token = load_token(&store, every_connection)?;
    let listener = TcpListener::bind(options.bind).map_err(|source| ServeError::Bind {
        addr: options.bind,
        source,
    })?;
    let addr = listener.local_addr().map_err(ServeError::Runtime)?;
    let security = Arc::new(security::Security::new(
        addr,
        token,
        every_connection,
        &options.allow_hosts,
    ));
    let bound = Bound::new(addr, &security);
    let forwarder =
        crate::otlp::forward::Forwarder::new(store.clone(), store.config().forward.clone())?;
    listener
        .set_nonblocking(true)
        .map_err(ServeError::Runtime)?;
    let trigger = Arc::new(Trigger::new());
    let _watcher = if options.watch {
        Some(service::watch_inbox(&store, Arc::clone(&trigger))?)
    } else {
        None
    };
    let (passes_tx, passes) = watch::channel(0u64);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let changed = crate::ingest::watch::ChangedFiles::new();
    let _transcripts = if options.watch && options.transcripts {
        watch_transcripts(changed.clone(), &trigger)
    } else {
        None
    };
    let compactor = spawn_compactor(
        store.clone(),
        Arc::clone(&trigger),
        &options,
        passes_tx,
        changed,
    )?;
    // A client that falls this many batches behind reads the log itself.
    let (live, _) = tokio::sync::broadcast::channel(64);
    let state = AppState {
        store,
        trigger: Arc::clone(&trigger),
        live,
        shutdown,
        options: Arc::new(options),
    };
    let blocking_threads = state.options.blocking_threads.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .thread_name("ctrace-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let stop = Arc::clone(&trigger);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        if let Some(forwarder) = forwarder {
            tokio::spawn(forward_loop(
                forwarder,
                passes.clone(),
                state.shutdown.clone(),
            ));
        }
        tokio::spawn(stream::hub(
            state.store.clone(),
            passes,
            state.shutdown.clone(),
            state.live.clone(),
            state.options.stream_batch,
            state.options.stream_batch_bytes,
        ));
        tracing::info!(%addr, "listening");
        on_bound(bound);
        let signal = async move {
            wait_for_signal().await;
            tracing::info!("stopping: closing streams, finishing the compaction pass");
            // Streams end first: the graceful shutdown waits for every connection.
            let _ = shutdown_tx.send(true);
            stop.stop();
        };
        let limits = Limits {
            header_read_timeout: state.options.header_read_timeout,
            max_connections: state.options.max_connections.max(1),
        };
        let router = router(state, Arc::clone(&security));
        accept_loop(listener, router, security, limits, signal).await
    });
    // Whatever ended the server, the compactor stops after its pass and commits.
    trigger.stop();
    if compactor.join().is_err() {
        tracing::error!("the compactor thread panicked");
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    served.map_err(ServeError::Runtime)
}

/// The token of `store`: required of every connection when `every_connection` (an error then
/// stops the service); otherwise made too, for connections whose user cannot be told, but a
/// failure (a read-only store, an unsafe file) is logged and the service answers only its own
/// user's connections.
///
/// # Errors
/// [`ServeError::Token`] when `every_connection` and the token cannot be read or made.
fn load_token(store: &Store, every_connection: bool) -> Result<Option<String>, ServeError> {
    match security::load_or_create_token(&store.paths().root) {
        Ok(token) => Ok(Some(token)),
        Err(error) if every_connection => Err(error.into()),
        Err(error) => {
            tracing::warn!(
                error = %error,
                "no serve token: only connections of this user are answered"
            );
            Ok(None)
        }
    }
}

/// The limits of the accept loop.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
}

/// Accepts connections on `listener` until `signal` completes, serving each with `router`
/// over HTTP/1.1 once its peer check (`security::Security::admit`) lets it in; at most
/// `limits.max_connections` at once. After the signal, waits for the open connections to end
/// (each finishes its request in progress).
///
/// # Errors
/// When the listener's address cannot be read.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    security: Arc<security::Security>,
    limits: Limits,
    signal: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let local = listener.local_addr()?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(signal);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let watcher = graceful.watcher();
        let security = Arc::clone(&security);
        let router = router.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let admission = if security.every_connection() {
                security::Admission::Credential
            } else {
                // Reads procfs: off the async threads.
                tokio::task::spawn_blocking(move || security.admit(peer, local))
                    .await
                    .unwrap_or(security::Admission::Credential)
            };
            if let security::Admission::Refused { .. } = admission {
                return;
            }
            let service = router.map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(admission);
                request
            });
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, %peer, "connection ended");
            }
        });
    }
    drop(listener);
    tracing::debug!("waiting for open connections");
    graceful.shutdown().await;
    Ok(())
}

/// After a failed `accept`: a connection that failed before it was accepted is skipped; on
/// anything else (too many open files) the loop pauses for a second rather than spinning.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Forwards new records (`[forward]`): a step after every compaction pass (and every 5 s),
/// batches back to back while there is a backlog, until the service stops.
async fn forward_loop(
    mut forwarder: crate::otlp::forward::Forwarder,
    mut passes: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    use crate::otlp::forward::Step;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = Arc::clone(&stopping);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            stopping.store(true, Ordering::Relaxed);
        });
    }
    tracing::info!(
        endpoint = %forwarder.checkpoint().endpoint,
        from = forwarder.checkpoint().next_offset,
        "forwarding records"
    );
    // After a failed step, the next waits 1 s, doubling to 5 minutes while steps keep failing
    // (an endpoint refusing the credentials is retried until someone fixes them).
    let mut failed_wait = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let stop = Arc::clone(&stopping);
        let stepped = tokio::task::spawn_blocking(move || {
            let step = forwarder.step(&|| stop.load(Ordering::Relaxed));
            (forwarder, step)
        })
        .await;
        let Ok((back, step)) = stepped else {
            tracing::error!("forward: the forwarding task failed; forwarding stops");
            return;
        };
        forwarder = back;
        let wait = match step {
            Ok(Step::Forwarded {
                records,
                dropped,
                next_offset,
            }) => {
                tracing::debug!(records, dropped, next_offset, "forwarded");
                failed_wait = Duration::from_secs(1);
                continue;
            }
            Ok(Step::Stopped) => return,
            Ok(Step::Idle) => {
                failed_wait = Duration::from_secs(1);
                Duration::from_secs(5)
            }
            Err(error) => {
                let wait = failed_wait;
                failed_wait = (failed_wait * 2).min(Duration::from_secs(300));
                tracing::error!(
                    error = %error,
                    at_offset = forwarder.checkpoint().next_offset,
                    retry_in_s = wait.as_secs(),
                    "forward: not delivered (check [forward] endpoint and headers); \
                     forwarding holds here and retries"
                );
                wait
            }
        };
        // A new pass wakes an idle forwarder; a failing one waits its time out.
        let failing = failed_wait > Duration::from_secs(1);
        tokio::select! {
            _ = passes.changed(), if !failing => {}
            _ = shutdown.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Waits for SIGINT or SIGTERM (only SIGINT where SIGTERM cannot be handled).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot handle SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Watches Claude Code's transcript directories; a failure (no inotify watches left) is
/// logged and the service goes on with hooks only.
fn watch_transcripts(
    changed: crate::ingest::watch::ChangedFiles,
    trigger: &Arc<Trigger>,
) -> Option<crate::ingest::watch::TranscriptWatcher> {
    let dirs = crate::ingest::watch::projects_dirs();
    match crate::ingest::watch::watch_transcripts(&dirs, changed, Arc::clone(trigger)) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(error = %error, cause = %error.source, "transcripts are not watched");
            None
        }
    }
}

/// Starts the compactor loop on its own thread; each successful pass bumps `passes`; it tails
/// the transcripts hooks name and those in `changed`.
fn spawn_compactor(
    store: Store,
    trigger: Arc<Trigger>,
    options: &ServeOptions,
    passes: watch::Sender<u64>,
    changed: crate::ingest::watch::ChangedFiles,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let service_options = options.service.clone();
    std::thread::Builder::new()
        .name("ctrace-compactor".into())
        .spawn(move || {
            // The service keeps the full-text index: create it when missing, so the compactor
            // maintains it (the first pass indexes what the log holds).
            if !crate::index::exists(store.paths())
                && let Err(error) = crate::index::catch_up(&store, Some(Duration::ZERO))
            {
                tracing::warn!(%error, "cannot create the index; search answers nothing");
            }
            let tailer = crate::ingest::watch::WatchedTailer::new(changed);
            let compactor = Compactor::new(&store, &CONSUMERS).with_tailer(&tailer);
            service::run(&compactor, &trigger, &service_options, &mut |pass| {
                // A failed pass is logged and retried by `service::run`.
                if let Ok(report) = pass {
                    let applied: u64 = report
                        .consumers
                        .iter()
                        .map(|(_, pass)| pass.applied_records)
                        .sum();
                    tracing::info!(
                        sealed = report.refresh.records(),
                        applied,
                        "compaction pass"
                    );
                    passes.send_modify(|n| *n = n.wrapping_add(1));
                }
            });
        })
        .map_err(ServeError::Runtime)
}
