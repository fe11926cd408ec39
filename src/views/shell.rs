//! Words of an agent-written shell command line, for recognising commands (`bd close ID`) in
//! Bash tool calls.
//!
//! Invariants:
//! - Words are split and unquoted by the `shlex` crate (POSIX rules: `'…'` literal, `"…"` with
//!   `\"`, `\\`, `\$`, `` \` `` escapes, a backslash outside quotes escapes the next character,
//!   `#` at the start of a word begins a comment).
//! - `;`, `&` and `|` outside quotes end a command and come out as words of their own, one per
//!   character (`&&` is two words), so callers can stop at them.
//! - Agent-written commands are often cut short. Where `shlex` refuses a command, an
//!   unterminated quote runs to the end of the line (as if closed there) and a trailing lone
//!   backslash is kept literal, so the words before it are never lost.

/// The words of `command` (see the module invariants). Expansions are not performed.
pub(crate) fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (i, b) in command.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, b) {
            (Some(b'\''), b'\'') | (Some(b'"'), b'"') => quote = None,
            (Some(b'\''), _) => {}
            (_, b'\\') => escaped = true,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b';' | b'&' | b'|') => {
                // ASCII separators: `i` and `i + 1` are character boundaries.
                words.extend(command_words(&command[start..i]));
                words.push(char::from(b).to_string());
                start = i + 1;
            }
            (None, _) => {}
        }
    }
    words.extend(command_words(&command[start..]));
    words
}

/// The `shlex` words of one command without separators. When `shlex` refuses it (an
/// unterminated quote, a trailing lone backslash), the same text with the quote closed or the
/// backslash escaped at its end.
fn command_words(text: &str) -> Vec<String> {
    shlex::split(text)
        .or_else(|| {
            ["\\", "'", "\"", "\\\""]
                .iter()
                .find_map(|end| shlex::split(&format!("{text}{end}")))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &str) -> Vec<String> {
        shell_words(command)
    }

    /// Issue 15: the fold's lexer is `shlex` plus the separators: separators outside quotes
    /// are words, inside quotes they are text.
    #[test]
    fn separators_outside_quotes_are_words() {
        assert_eq!(
            words("cd x && bd close bd-1; bd reopen bd-2|cat 2>&1"),
            [
                "cd", "x", "&", "&", "bd", "close", "bd-1", ";", "bd", "reopen", "bd-2", "|",
                "cat", "2>", "&", "1"
            ]
        );
        assert_eq!(
            words("bd update bd-1 --title 'A & B; C|D' --status=open"),
            [
                "bd",
                "update",
                "bd-1",
                "--title",
                "A & B; C|D",
                "--status=open"
            ]
        );
        assert_eq!(words(r"echo a\;b"), ["echo", "a;b"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    /// Issue 15: escaped quotes inside double quotes (the hand-written lexer split the title
    /// at `\"`).
    #[test]
    fn escaped_quotes_stay_in_the_word() {
        assert_eq!(
            words(r#"bd create "say \"hi\" & go" -p 1"#),
            ["bd", "create", r#"say "hi" & go"#, "-p", "1"]
        );
        assert_eq!(words(r#"bd create 'it'\''s'"#), ["bd", "create", "it's"]);
    }

    /// Issue 15: what `shlex` refuses still gives its words: an unterminated quote runs to the
    /// end (separators in it included), a trailing backslash is literal.
    #[test]
    fn unterminated_commands_keep_their_words() {
        assert_eq!(
            words(r#"bd close bd-1 --reason "cut; short"#),
            ["bd", "close", "bd-1", "--reason", "cut; short"]
        );
        assert_eq!(
            words("bd close bd-2 'open"),
            ["bd", "close", "bd-2", "open"]
        );
        assert_eq!(words(r"bd close bd-3 \"), ["bd", "close", "bd-3", r"\"]);
        assert_eq!(words(r#"echo "a\"#), ["echo", r"a\"]);
        assert_eq!(
            words(r#"bd close bd-4 "x; bd close bd-5"#),
            ["bd", "close", "bd-4", "x; bd close bd-5"]
        );
    }
}
