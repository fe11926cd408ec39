//! The user's terminal: raw mode behind a drop guard, and its size. Also used by
//! `ctrace replay`.

use std::io::IsTerminal;
use std::os::fd::AsFd;

/// Restores the terminal's settings when dropped.
struct RawMode {
    original: rustix::termios::Termios,
}

impl RawMode {
    fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let original = rustix::termios::tcgetattr(stdin.as_fd())?;
        let mut raw = original.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw)?;
        Ok(Self { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = rustix::termios::tcsetattr(
            stdin.as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.original,
        );
    }
}

/// Puts stdin in raw mode (when it is a terminal) until the guard is dropped; `None` when stdin
/// is not a terminal.
///
/// # Errors
/// When stdin is a terminal whose settings cannot be read or changed.
pub fn raw_mode_guard() -> std::io::Result<Option<impl Drop>> {
    if std::io::stdin().is_terminal() {
        RawMode::enable().map(Some)
    } else {
        Ok(None)
    }
}

/// The size of the user's terminal (stdout, else stdin, else /dev/tty), columns × rows;
/// `None` when there is no terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    let from = |fd: std::os::fd::BorrowedFd<'_>| {
        rustix::termios::tcgetwinsize(fd)
            .ok()
            .map(|w| (w.ws_col, w.ws_row))
    };
    let stdout = std::io::stdout();
    let stdin = std::io::stdin();
    from(stdout.as_fd())
        .or_else(|| from(stdin.as_fd()))
        .or_else(|| {
            std::fs::File::open("/dev/tty")
                .ok()
                .and_then(|tty| from(tty.as_fd()))
        })
}
