//! Time arguments and display: `--since 2h`, `--since yesterday`, `--until 2026-01-31`,
//! RFC 3339 timestamps; display as RFC 3339 UTC with milliseconds.

use super::UsageError;

/// The time range of a command's `--since` / `--until` flags, each parsed by [`parse_time`]
/// relative to `now_ns`; an absent flag leaves that end open.
///
/// # Errors
/// [`UsageError`] naming the flag.
pub(crate) fn parse_range(
    since: Option<&str>,
    until: Option<&str>,
    now_ns: u64,
) -> Result<crate::log::read::TimeRange, UsageError> {
    Ok(crate::log::read::TimeRange {
        since: since
            .map(|t| parse_time(t, now_ns, "--since"))
            .transpose()?,
        until: until
            .map(|t| parse_time(t, now_ns, "--until"))
            .transpose()?,
    })
}

/// Parses a time argument into ns since the epoch, relative to `now_ns`:
/// - a duration (`90s`, `2h`, `3days`, `1w`; humantime syntax) means that long ago;
/// - `now`, `today` (00:00 UTC), `yesterday` (00:00 UTC the day before);
/// - a date `YYYY-MM-DD` (00:00 UTC) or an RFC 3339 timestamp (`2026-01-31T12:00:00Z`).
///
/// # Errors
/// [`UsageError`] naming the argument and the accepted forms.
pub fn parse_time(text: &str, now_ns: u64, flag: &str) -> Result<u64, UsageError> {
    let day_ns = 86_400 * 1_000_000_000u64;
    let trimmed = text.trim();
    match trimmed {
        "now" => return Ok(now_ns),
        "today" => return Ok(now_ns - now_ns % day_ns),
        "yesterday" => return Ok((now_ns - now_ns % day_ns).saturating_sub(day_ns)),
        _ => {}
    }
    if let Ok(ago) = humantime::parse_duration(trimmed) {
        return Ok(now_ns.saturating_sub(u64::try_from(ago.as_nanos()).unwrap_or(u64::MAX)));
    }
    let candidate = if trimmed.len() == 10 {
        format!("{trimmed}T00:00:00Z")
    } else {
        trimmed.to_owned()
    };
    if let Some(ts) = crate::claude::parse_timestamp(&candidate) {
        return Ok(ts);
    }
    Err(UsageError(format!(
        "{flag} `{text}` is not a time: use a duration ago (2h, 3days), today, yesterday, a date (2026-01-31) or an RFC 3339 timestamp (2026-01-31T12:00:00Z)"
    )))
}

/// Formats ns since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_ts(ts_ns: u64) -> String {
    crate::model::format_ts(ts_ns)
}

/// Formats a duration in ns compactly (`850ms`, `12.3s`, `4m05s`, `2h13m`).
pub fn format_duration(ns: u64) -> String {
    crate::model::format_duration(ns)
}

/// The current time in ns since the epoch (one definition, in the library root).
pub use crate::now_ns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = 1_764_000_000_000_000_000u64;
        assert_eq!(
            parse_time("2h", now, "--since").unwrap(),
            now - 7_200_000_000_000
        );
        assert_eq!(
            parse_time("2026-01-31", now, "--since").unwrap(),
            1_769_817_600_000_000_000
        );
        assert_eq!(
            parse_time("2026-01-31T00:00:01Z", now, "--since").unwrap(),
            1_769_817_601_000_000_000
        );
        assert!(parse_time("yesterday", now, "--since").unwrap() < now);
        assert!(parse_time("soonish", now, "--since").is_err());
        assert_eq!(
            format_ts(1_769_817_601_000_000_000),
            "2026-01-31T00:00:01.000Z"
        );
        assert_eq!(format_duration(61_000_000_000), "1m01s");
    }
}
