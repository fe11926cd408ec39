//! The tokenizer of the `text` field: words for alphabetic scripts, bigrams for CJK.
//!
//! - A *word* is a maximal run of alphanumeric characters (`char::is_alphanumeric`) that are not
//!   CJK; it becomes one token, lowercased. Words longer than [`MAX_TOKEN_BYTES`] are dropped
//!   (base64 blobs, hashes), as tantivy's `RemoveLongFilter` would.
//! - A *CJK run* is a maximal run of Han, Hiragana, Katakana or Hangul characters. A run of two
//!   or more characters becomes its overlapping bigrams (`数据库` → `数据`, `据库`) at
//!   consecutive positions, so a query of two or more CJK characters is a phrase of bigrams that
//!   matches exactly where the query occurs as a substring of a run. A run of one character is
//!   one unigram token.
//! - Everything else (spaces, punctuation, symbols, `_`) separates tokens.
//!
//! The same tokenizer is used at query time (tantivy's query parser turns a word that yields
//! several tokens into a phrase), and by the snippet highlighter.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which the tokenizer is registered in the index.
pub(crate) const TOKENIZER_NAME: &str = "ctrace_words_cjk";

/// Longest token kept, in bytes (UTF-8, before lowercasing).
pub const MAX_TOKEN_BYTES: usize = 64;

/// Whether `c` belongs to a script written without spaces between words (Chinese, Japanese) or
/// one whose words carry attached particles (Korean): Han ideographs, Hiragana, Katakana,
/// Hangul.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x3040..=0x309F    // Hiragana
        | 0x30A0..=0x30FF    // Katakana
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xD7B0..=0xD7FF    // Hangul Jamo extended B
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0x20000..=0x2FA1F  // CJK extensions B–F, compatibility supplement
    ) && c.is_alphanumeric()
}

/// Whether `c` is part of a (non-CJK) word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// The word + CJK-bigram tokenizer (see the module documentation).
///
/// Token buffers are reused from one text to the next, so tokenizing allocates only when a text
/// has more tokens, or longer ones, than any before it.
#[derive(Debug, Clone, Default)]
pub(crate) struct WordsCjkTokenizer {
    tokens: Vec<Token>,
}

/// The tokens of one text, produced eagerly.
#[derive(Debug)]
pub(crate) struct WordsCjkTokenStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl Tokenizer for WordsCjkTokenizer {
    type TokenStream<'a> = WordsCjkTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordsCjkTokenStream<'a> {
        let len = tokenize_reusing(text, &mut self.tokens);
        // Keep at most a few thousand spare buffers.
        self.tokens.truncate(len.max(4096));
        WordsCjkTokenStream {
            tokens: &mut self.tokens[..len],
            next: 0,
        }
    }
}

impl TokenStream for WordsCjkTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// Token slots: the first `len` are in use; the ones after are spare buffers.
struct Slots<'a> {
    tokens: &'a mut Vec<Token>,
    len: usize,
}

impl Slots<'_> {
    fn push(&mut self, text: &str, from: usize, to: usize, position: usize) {
        if self.len == self.tokens.len() {
            self.tokens.push(Token::default());
        }
        let token = &mut self.tokens[self.len];
        self.len += 1;
        token.offset_from = from;
        token.offset_to = to;
        token.position = position;
        token.position_length = 1;
        token.text.clear();
        let slice = &text[from..to];
        if slice.is_ascii() {
            token.text.push_str(slice);
            token.text.make_ascii_lowercase();
        } else {
            for c in slice.chars() {
                token.text.extend(c.to_lowercase());
            }
        }
    }
}

/// Appends the tokens of `text` to `tokens` (see the module documentation).
pub fn tokenize(text: &str, tokens: &mut Vec<Token>) {
    let mut spare = Vec::new();
    let len = tokenize_reusing(text, &mut spare);
    spare.truncate(len);
    tokens.append(&mut spare);
}

/// Writes the tokens of `text` into `tokens` from index 0, reusing the buffers there; returns
/// how many there are (entries after that are stale spares).
fn tokenize_reusing(text: &str, tokens: &mut Vec<Token>) -> usize {
    let mut slots = Slots { tokens, len: 0 };
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut i = 0;
    // CJK run: byte starts of its characters.
    let mut run: Vec<usize> = Vec::new();
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                let start = i;
                while i < bytes.len() {
                    let b = bytes[i];
                    if b.is_ascii_alphanumeric() {
                        i += 1;
                    } else if b.is_ascii() {
                        break;
                    } else {
                        let Some(c) = text[i..].chars().next() else {
                            break;
                        };
                        if !is_word_char(c) {
                            break;
                        }
                        i += c.len_utf8();
                    }
                }
                if i - start <= MAX_TOKEN_BYTES {
                    slots.push(text, start, i, position);
                    position += 1;
                }
            } else {
                i += 1;
            }
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if is_cjk(c) {
            run.clear();
            let mut end = i;
            while end < bytes.len() {
                let Some(c) = text[end..].chars().next() else {
                    break;
                };
                if !is_cjk(c) {
                    break;
                }
                run.push(end);
                end += c.len_utf8();
            }
            if run.len() == 1 {
                slots.push(text, i, end, position);
                position += 1;
            } else {
                for k in 0..run.len() - 1 {
                    let to = run.get(k + 2).copied().unwrap_or(end);
                    slots.push(text, run[k], to, position);
                    position += 1;
                }
            }
            i = end;
        } else if is_word_char(c) {
            let start = i;
            while i < bytes.len() {
                let Some(c) = text[i..].chars().next() else {
                    break;
                };
                if !is_word_char(c) {
                    break;
                }
                i += c.len_utf8();
            }
            if i - start <= MAX_TOKEN_BYTES {
                slots.push(text, start, i, position);
                position += 1;
            }
        } else {
            i += c.len_utf8();
        }
    }
    slots.len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        for t in &tokens {
            assert!(text.is_char_boundary(t.offset_from) && text.is_char_boundary(t.offset_to));
        }
        tokens.into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(
            texts("Error: tool_use FAILED (exit=2) Größe"),
            ["error", "tool", "use", "failed", "exit", "2", "größe"]
        );
    }

    #[test]
    fn cjk_runs_become_bigrams() {
        assert_eq!(
            texts("数据库error 日本語のテスト 한국어 x 字"),
            [
                "数据", "据库", "error", "日本", "本語", "語の", "のテ", "テス", "スト", "한국",
                "국어", "x", "字"
            ]
        );
    }

    #[test]
    fn long_tokens_are_dropped() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(texts(&format!("x {long} y")), ["x", "y"]);
        let max = "b".repeat(MAX_TOKEN_BYTES);
        assert_eq!(texts(&max), std::slice::from_ref(&max));
    }

    #[test]
    fn positions_are_consecutive() {
        let mut tokens = Vec::new();
        tokenize("one 二三四 five", &mut tokens);
        let positions: Vec<usize> = tokens.iter().map(|t| t.position).collect();
        assert_eq!(positions, [0, 1, 2, 3]);
    }
}
