//! `ctrace serve`: the service ([`crate::serve`]) on this store until SIGINT or SIGTERM.

use std::net::SocketAddr;

use clap::Args;

use crate::log::Store;
use crate::serve::{DEFAULT_BIND, ServeOptions};

/// Arguments of `ctrace serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Do not watch the inbox or the transcripts; compact on HTTP hooks and once a minute only
    #[arg(long)]
    pub no_watch: bool,
    /// Do not watch Claude Code's transcript directories (by default transcripts already
    /// there at start, and lines written later, are read into the store without hooks)
    #[arg(long)]
    pub no_transcripts: bool,
    /// Largest request body accepted (bytes, or 64MiB, 1MB, ...)
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Answer OTLP requests 429 (Retry-After) while the unsealed inbox holds more than this
    /// (bytes, or 256MiB, ...): the compactor is behind, the exporters retry later
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_inbox: usize,
    /// Require the access token (or a login) of every connection on loopback too; without
    /// it, on loopback, this user's connections need none and other users' are refused (see
    /// docs/security.md). Always required on other addresses. The token is kept in
    /// `<store>/serve.token`; a single-use login link for the page is printed at start
    #[arg(long)]
    pub token: bool,
    /// Also accept this `Host` value (repeatable), as the browser sends it: `NAME[:PORT]`, no
    /// scheme or path; e.g. `localhost:8000` behind `ssh -L 8000:localhost:7317`, or a reverse
    /// proxy's name
    #[arg(long = "allow-host", value_name = "NAME[:PORT]", value_parser = parse_allowed_host)]
    pub allow_hosts: Vec<String>,
    /// Close a connection that takes longer than this to send a request head, or idles this
    /// long between requests (1s, 500ms, ...)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Connections served at once; more wait until one closes
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Live stream clients (`/api/stream`, each open dashboard is one) served at once; one
    /// more is answered 503 with Retry-After
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_stream_clients: u32,
    /// Open the dashboard in a browser once listening (`$BROWSER`, else `xdg-open`)
    #[arg(long)]
    pub open: bool,
}

fn parse_allowed_host(text: &str) -> Result<String, String> {
    crate::serve::security::parse_allowed_host(text).map_err(|e| e.to_string())
}

fn parse_size(text: &str) -> Result<usize, String> {
    parse_size::parse_size(text)
        .map_err(|e| e.to_string())
        .and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
}

/// Runs `ctrace serve`; prints `listening on http://ADDR:PORT` on stderr once bound (then a
/// single-use login link when the browser may need one).
///
/// # Errors
/// When the address cannot be bound, the watcher or the runtime cannot start.
pub fn run(store: &Store, args: &ServeArgs) -> anyhow::Result<i32> {
    let options = ServeOptions {
        bind: args.bind,
        watch: !args.no_watch,
        transcripts: !args.no_transcripts,
        max_body_bytes: args.max_body,
        max_inbox_bytes: args.max_inbox as u64,
        token: args.token,
        header_read_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        max_stream_clients: args.max_stream_clients as usize,
        allow_hosts: args.allow_hosts.clone(),
        ..ServeOptions::default()
    };
    crate::serve::serve(store.clone(), options, |bound| {
        eprintln!("listening on http://{}", bound.addr);
        if let Some(url) = &bound.login_url {
            eprintln!(
                "open the page with (once, within 10 minutes; then log in with the token in \
                 serve.token): {url}"
            );
        }
        if args.open {
            // A code of its own: the printed link stays usable.
            let url = bound
                .new_login_url()
                .unwrap_or_else(|| format!("http://{}/", bound.addr));
            open_browser(&url);
        }
    })?;
    Ok(0)
}

/// Starts `$BROWSER URL` (the first word of `$BROWSER` as the program), else `xdg-open URL`,
/// without waiting; a failure is a note on stderr (the service keeps running).
fn open_browser(url: &str) {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let words = browser
        .as_deref()
        .and_then(shlex::split)
        .unwrap_or_else(|| vec!["xdg-open".to_owned()]);
    let Some((program, args)) = words.split_first() else {
        return;
    };
    let started = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        // Reaped on a thread of its own: the browser may outlive the service.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(error) => {
            eprintln!("ctrace: could not open a browser with `{program}` ({error}); open {url}");
        }
    }
}
