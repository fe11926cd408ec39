//! Splits a top-level JSON array into the byte ranges of its elements without validating their
//! content, so one malformed element (a lone surrogate escape, say) does not hide the others.

/// Result of splitting an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `(start, end)` byte ranges of whole elements, in order.
    pub elements: Vec<(usize, usize)>,
    /// Byte position where splitting stopped because the text is not a well-formed array
    /// (unterminated string or array, stray bytes); `None` when it ended cleanly.
    pub broken_at: Option<usize>,
}

/// Splits `text` (which must start, after whitespace, with `[`) into element ranges.
pub fn split_array(text: &[u8]) -> Split {
    let mut elements = Vec::new();
    let mut i = skip_ws(text, 0);
    if text.get(i) != Some(&b'[') {
        return Split {
            elements,
            broken_at: Some(i),
        };
    }
    i += 1;
    loop {
        i = skip_ws(text, i);
        match text.get(i) {
            Some(b']') if elements.is_empty() => {
                let end = skip_ws(text, i + 1);
                return Split {
                    elements,
                    broken_at: (end != text.len()).then_some(end),
                };
            }
            None => {
                return Split {
                    elements,
                    broken_at: Some(i),
                };
            }
            _ => {}
        }
        let start = i;
        let Some(end) = value_end(text, i) else {
            return Split {
                elements,
                broken_at: Some(start),
            };
        };
        elements.push((start, end));
        i = skip_ws(text, end);
        match text.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {
                let end = skip_ws(text, i + 1);
                return Split {
                    elements,
                    broken_at: (end != text.len()).then_some(end),
                };
            }
            _ => {
                return Split {
                    elements,
                    broken_at: Some(i),
                };
            }
        }
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON value starting at `i`: strings, objects and arrays are matched
/// structurally; scalars run to the next delimiter.
fn value_end(text: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match *text.get(j)? {
            b'"' => {
                j += 1;
                loop {
                    match *text.get(j)? {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                j += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                j += 1;
            }
            b'}' | b']' => {
                if depth == 0 {
                    return (j > i).then_some(j);
                }
                depth -= 1;
                j += 1;
            }
            b',' if depth == 0 => return (j > i).then_some(j),
            c if depth == 0 && c.is_ascii_whitespace() => return Some(j),
            _ => j += 1,
        }
        if depth == 0 && j > i && matches!(text[i], b'"' | b'{' | b'[') {
            return Some(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (Vec<&str>, Option<usize>) {
        let split = split_array(text.as_bytes());
        (
            split.elements.iter().map(|&(s, e)| &text[s..e]).collect(),
            split.broken_at,
        )
    }

    #[test]
    fn splits_elements() {
        assert_eq!(parts("[]"), (vec![], None));
        assert_eq!(
            parts(" [ {\"a\":\"]}\"} , [1,2], 3 ,\"x\\\"\" ]\n"),
            (vec!["{\"a\":\"]}\"}", "[1,2]", "3", "\"x\\\"\""], None)
        );
        assert_eq!(
            parts("[{\"a\":\"\\udc8f\"}]"),
            (vec!["{\"a\":\"\\udc8f\"}"], None)
        );
    }

    #[test]
    fn broken_arrays_keep_whole_elements() {
        assert_eq!(parts("[{\"a\":1}, {\"b\":"), (vec!["{\"a\":1}"], Some(10)));
        assert_eq!(parts("{\"a\":1}"), (vec![], Some(0)));
        assert_eq!(parts("[1] x"), (vec!["1"], Some(4)));
    }
}
