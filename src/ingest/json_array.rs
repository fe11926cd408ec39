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

/// Splits `text` (which must start, after whitespace, with `[`) into element ranges: the
/// whole-buffer form of [`ArrayScanner`].
pub fn split_array(text: &[u8]) -> Split {
    struct Ranges(Vec<(usize, usize)>, usize);
    impl ArraySink for Ranges {
        fn element_start(&mut self, at: u64) {
            self.1 = at as usize;
        }
        fn element_bytes(&mut self, _: &[u8]) {}
        fn element_end(&mut self, end: u64) {
            self.0.push((self.1, end as usize));
        }
    }
    let mut scanner = ArrayScanner::default();
    let mut ranges = Ranges(Vec::new(), 0);
    scanner.feed(text, &mut ranges);
    let end = scanner.finish();
    Split {
        elements: ranges.0,
        broken_at: end.broken_at.map(|at| at as usize),
    }
}

/// What an [`ArrayScanner`] reports as it goes. An element that was started and never ended
/// was cut by the end of the input or by malformed text: [`ScanEnd::broken_at`] says where.
pub trait ArraySink {
    /// An element starts at byte `at` of the input.
    fn element_start(&mut self, at: u64);
    /// The next bytes of the current element (called zero or more times per element).
    fn element_bytes(&mut self, bytes: &[u8]);
    /// The current element ends at byte `end` (exclusive).
    fn element_end(&mut self, end: u64);
}

/// How an input ended, from [`ArrayScanner::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Where splitting stopped because the text is not a well-formed array; `None` when the
    /// array ended cleanly.
    pub broken_at: Option<u64>,
    /// Position of the first non-whitespace byte of the input.
    pub first_content: Option<u64>,
    /// One past the last non-whitespace byte of the input (0 when there is none).
    pub content_end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InString {
    No,
    Yes,
    Escaped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` (`first`) or a `,`: an element comes next.
    Open { first: bool },
    /// Inside an element that started at `start`.
    Element {
        start: u64,
        depth: u32,
        string: InString,
        /// The element is a string, object or array: it ends with its closing byte.
        composite: bool,
    },
    /// After an element: `,` or `]` comes next.
    After,
    /// After the closing `]`: only whitespace may follow.
    Closed,
    /// Malformed at this position; the rest is not split.
    Broken { at: u64 },
}

/// Splits a top-level JSON array fed in pieces into its elements without validating their
/// content, so one malformed element does not hide the others and an array of any size is
/// split with constant memory. Strings, objects and arrays are matched structurally; a
/// scalar runs to the next `,`, `]`, `}` or whitespace.
#[derive(Debug, Clone)]
pub struct ArrayScanner {
    state: State,
    /// Bytes fed so far.
    position: u64,
    first_content: Option<u64>,
    content_end: u64,
}

impl Default for ArrayScanner {
    fn default() -> Self {
        Self {
            state: State::Start,
            position: 0,
            first_content: None,
            content_end: 0,
        }
    }
}

impl ArrayScanner {
    /// Feeds the next bytes of the input, reporting elements to `sink`.
    pub fn feed(&mut self, chunk: &[u8], sink: &mut impl ArraySink) {
        // Start in `chunk` of the current element's bytes not yet handed to the sink.
        let mut pending: Option<usize> = matches!(self.state, State::Element { .. }).then_some(0);
        for (k, &byte) in chunk.iter().enumerate() {
            let at = self.position + k as u64;
            if !byte.is_ascii_whitespace() {
                self.first_content.get_or_insert(at);
                self.content_end = at + 1;
            }
            let mut again = true;
            while again {
                again = false;
                match self.state {
                    State::Start if byte.is_ascii_whitespace() => {}
                    State::Start if byte == b'[' => self.state = State::Open { first: true },
                    State::Open { .. } | State::After | State::Closed
                        if byte.is_ascii_whitespace() => {}
                    State::Open { first: true } if byte == b']' => self.state = State::Closed,
                    State::Open { .. } => {
                        sink.element_start(at);
                        pending = Some(k);
                        self.state = State::Element {
                            start: at,
                            depth: 0,
                            string: InString::No,
                            composite: matches!(byte, b'"' | b'{' | b'['),
                        };
                        again = true;
                    }
                    State::Element {
                        start,
                        depth,
                        string,
                        composite,
                    } => match self.element_byte(byte, at, start, depth, string, composite) {
                        Step::Continue => {}
                        Step::EndBefore => {
                            if let Some(from) = pending.take() {
                                sink.element_bytes(&chunk[from..k]);
                            }
                            sink.element_end(at);
                            self.state = State::After;
                            again = true;
                        }
                        Step::EndAfter => {
                            if let Some(from) = pending.take() {
                                sink.element_bytes(&chunk[from..=k]);
                            }
                            sink.element_end(at + 1);
                            self.state = State::After;
                        }
                        Step::Broken => {
                            pending = None;
                            self.state = State::Broken { at: start };
                        }
                    },
                    State::After if byte == b',' => self.state = State::Open { first: false },
                    State::After if byte == b']' => self.state = State::Closed,
                    State::Start | State::After | State::Closed => {
                        self.state = State::Broken { at };
                    }
                    State::Broken { .. } => {}
                }
            }
        }
        if let Some(from) = pending {
            sink.element_bytes(&chunk[from..]);
        }
        self.position += chunk.len() as u64;
    }

    /// One byte inside an element; updates the element's state.
    fn element_byte(
        &mut self,
        byte: u8,
        at: u64,
        start: u64,
        mut depth: u32,
        mut string: InString,
        composite: bool,
    ) -> Step {
        match string {
            InString::Escaped => string = InString::Yes,
            InString::Yes => match byte {
                b'\\' => string = InString::Escaped,
                b'"' => string = InString::No,
                _ => {}
            },
            InString::No => match byte {
                b'"' => string = InString::Yes,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => {
                    return if at > start {
                        Step::EndBefore
                    } else {
                        Step::Broken
                    };
                }
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => {
                    return if at > start {
                        Step::EndBefore
                    } else {
                        Step::Broken
                    };
                }
                c if depth == 0 && c.is_ascii_whitespace() => return Step::EndBefore,
                _ => {}
            },
        }
        self.state = State::Element {
            start,
            depth,
            string,
            composite,
        };
        if composite && depth == 0 && string == InString::No {
            Step::EndAfter
        } else {
            Step::Continue
        }
    }

    /// Ends the input.
    pub fn finish(&self) -> ScanEnd {
        let broken_at = match self.state {
            State::Closed => None,
            State::Element { start, .. } => Some(start),
            State::Broken { at } => Some(at),
            State::Start | State::Open { .. } | State::After => Some(self.position),
        };
        ScanEnd {
            broken_at,
            first_content: self.first_content,
            content_end: self.content_end,
        }
    }
}

/// What one byte does to the element it belongs to.
enum Step {
    Continue,
    /// The element ended before this byte, which belongs to what follows.
    EndBefore,
    /// The element ends with this byte.
    EndAfter,
    /// The element is malformed (it cannot start with this byte).
    Broken,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-buffer splitter this module had before the scanner: the oracle of the
    /// property test below.
    fn reference_split(text: &[u8]) -> Split {
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

    /// Issue 14 item 9: the streaming scanner fed in random pieces splits exactly as the
    /// whole-buffer splitter did.
    #[test]
    fn scanner_in_pieces_matches_the_reference() {
        use proptest::prelude::*;
        let alphabet = proptest::sample::select(b"[]{}\",\\ \n\ta1x:".to_vec());
        let input = proptest::collection::vec(alphabet, 0..64);
        let cuts = proptest::collection::vec(0usize..64, 0..6);
        proptest!(ProptestConfig::with_cases(4000), |(mut text in input, mut cuts in cuts)| {
            if text.first() != Some(&b'[') && text.len() % 3 != 0 {
                text.insert(0, b'[');
            }
            let expected = reference_split(&text);
            cuts.retain(|&c| c <= text.len());
            cuts.sort_unstable();
            struct Collect(Vec<(usize, usize)>, usize, Vec<u8>, Vec<Vec<u8>>);
            impl ArraySink for Collect {
                fn element_start(&mut self, at: u64) {
                    self.1 = at as usize;
                    self.2.clear();
                }
                fn element_bytes(&mut self, bytes: &[u8]) {
                    self.2.extend_from_slice(bytes);
                }
                fn element_end(&mut self, end: u64) {
                    self.0.push((self.1, end as usize));
                    self.3.push(std::mem::take(&mut self.2));
                }
            }
            let mut scanner = ArrayScanner::default();
            let mut sink = Collect(Vec::new(), 0, Vec::new(), Vec::new());
            let mut from = 0;
            for cut in cuts.into_iter().chain([text.len()]) {
                scanner.feed(&text[from..cut], &mut sink);
                from = cut;
            }
            let end = scanner.finish();
            prop_assert_eq!(&sink.0, &expected.elements);
            prop_assert_eq!(end.broken_at.map(|b| b as usize), expected.broken_at);
            for ((s, e), bytes) in sink.0.iter().zip(&sink.3) {
                prop_assert_eq!(&text[*s..*e], &bytes[..]);
            }
        });
    }

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
