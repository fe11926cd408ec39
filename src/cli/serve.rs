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
    /// Require the access token on loopback too (always required on other addresses); it is
    /// kept in `<store>/serve.token` and a login link for the page is printed at start
    #[arg(long)]
    pub token: bool,
    /// Open the dashboard in a browser once listening (`$BROWSER`, else `xdg-open`)
    #[arg(long)]
    pub open: bool,
}

fn parse_size(text: &str) -> Result<usize, String> {
    parse_size::parse_size(text)
        .map_err(|e| e.to_string())
        .and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
}

/// Runs `ctrace serve`; prints `listening on http://ADDR:PORT` on stderr once bound (then the
/// login link when the token is required).
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
        ..ServeOptions::default()
    };
    crate::serve::serve(store.clone(), options, |bound| {
        eprintln!("listening on http://{}", bound.addr);
        let url = match bound.login_url {
            Some(url) => {
                eprintln!("open the page with: {url}");
                url
            }
            None => format!("http://{}/", bound.addr),
        };
        if args.open {
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
