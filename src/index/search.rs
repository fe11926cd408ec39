//! Queries: tantivy query syntax over the `text` field, keyword filters, a time range, the top
//! N by time or score, and snippets made from the record's text.

use std::ops::{Bound, Range};

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, Occur, Query, QueryParser, QueryParserError, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Order, ReloadPolicy, Searcher, Term};

use super::{Fields, IndexError, open, tantivy_err};
use crate::log::StorePaths;
use crate::log::read::TimeRange;
use crate::model::Source;
use crate::segments::Offset;

/// Field names a query may use (`field:value`); `text` is the default field.
pub(crate) const FIELD_NAMES: &[&str] = &[
    "text", "session", "source", "event", "tool", "model", "agent", "project", "type", "offset",
];

/// Order of the hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Newest first.
    #[default]
    Time,
    /// Best BM25 score first.
    Score,
}

/// One search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The query, tantivy syntax.
    pub query: String,
    /// Only this session (exact id).
    pub session: Option<String>,
    /// Only this source.
    pub source: Option<Source>,
    /// Only this event (hook event name, transcript line type, `pty/output`, ...).
    pub event: Option<String>,
    /// Only records naming this tool.
    pub tool: Option<String>,
    /// Only records in this time range.
    pub time: TimeRange,
    /// Most hits returned.
    pub limit: usize,
    /// Order of the hits.
    pub sort: SortOrder,
}

/// One hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The record's offset.
    pub offset: Offset,
    /// The record's time, ns since the epoch.
    pub ts: u64,
    /// BM25 score (only when sorted by score).
    pub score: Option<f32>,
}

/// The result of a search.
pub struct SearchResults {
    /// The top hits, in the requested order.
    pub hits: Vec<Hit>,
    /// Documents matching in all (may exceed `hits.len()`).
    pub total: u64,
    /// Makes snippets for these results.
    pub highlighter: Highlighter,
}

impl std::fmt::Debug for SearchResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchResults")
            .field("hits", &self.hits)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// A snippet: a fragment of the text and the byte ranges in it that match the query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snippet {
    /// The fragment (whitespace runs folded to one space).
    pub fragment: String,
    /// Byte ranges of `fragment` to highlight.
    pub highlights: Vec<Range<usize>>,
}

/// Makes snippets of a record's text for one query.
pub struct Highlighter {
    generator: SnippetGenerator,
}

impl Highlighter {
    /// The best fragment of `text` of at most `max_chars` characters, with the query's terms
    /// marked; the start of the text when no term is in it.
    pub fn snippet(&mut self, text: &str, max_chars: usize) -> Snippet {
        self.generator.set_max_num_chars(max_chars);
        let snippet = self.generator.snippet(text);
        let (fragment, highlights) = if snippet.fragment().is_empty() {
            let end = text
                .char_indices()
                .nth(max_chars)
                .map_or(text.len(), |(i, _)| i);
            (&text[..end], Vec::new())
        } else {
            (snippet.fragment(), snippet.highlighted().to_vec())
        };
        fold_whitespace(fragment, &highlights)
    }
}

/// Folds runs of whitespace (newlines included) into one space, moving the highlight ranges.
fn fold_whitespace(text: &str, highlights: &[Range<usize>]) -> Snippet {
    let mut out = String::with_capacity(text.len());
    // Map from input byte index to output byte index.
    let mut map = vec![0usize; text.len() + 1];
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        map[i] = out.len();
        if c.is_whitespace() || c.is_control() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    map[text.len()] = out.len();
    // Bytes inside a character map to its start.
    for i in 1..text.len() {
        if !text.is_char_boundary(i) {
            map[i] = map[i - 1];
        }
    }
    let highlights = highlights
        .iter()
        .filter(|r| r.end <= text.len() && r.start < r.end)
        .map(|r| map[r.start]..map[r.end])
        .filter(|r| r.start < r.end)
        .collect();
    Snippet {
        fragment: out,
        highlights,
    }
}

fn keyword_term(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, &value.to_lowercase()),
        IndexRecordOption::Basic,
    ))
}

fn parse(
    fields: &Fields,
    index: &tantivy::Index,
    query: &str,
) -> Result<Box<dyn Query>, IndexError> {
    if query.trim().is_empty() {
        return Err(IndexError::EmptyQuery);
    }
    let mut parser = QueryParser::for_index(index, vec![fields.text]);
    parser.set_conjunction_by_default();
    let rewritten = and_not_to_not(query);
    let bad = |problem| IndexError::BadQuery {
        query: query.to_owned(),
        problem,
    };
    let parsed = parser.parse_query(&rewritten).map_err(|e| match e {
        QueryParserError::FieldDoesNotExist(field) => IndexError::UnknownField {
            field,
            query: query.to_owned(),
        },
        QueryParserError::SyntaxError(_) => {
            if query.matches('"').count() % 2 == 1 {
                bad("unbalanced double quote")
            } else if query.matches('(').count() != query.matches(')').count() {
                bad("unbalanced parentheses")
            } else {
                bad("syntax error (quote special characters like : ( ) [ ] \" inside a \"phrase\")")
            }
        }
        QueryParserError::AllButQueryForbidden => {
            bad("only excluded terms (NOT x); add a term to match")
        }
        QueryParserError::ExpectedInt(_) => bad("offset:N needs a number"),
        QueryParserError::RangeMustNotHavePhrase => bad("a range cannot hold a phrase"),
        _ => bad("unsupported query"),
    })?;
    // A query whose every word is dropped by the tokenizer (only punctuation) matches nothing;
    // say so instead of answering with no hits.
    let mut has_term = false;
    parsed.query_terms(&mut |_, _| has_term = true);
    if !has_term {
        return Err(bad(
            "no searchable word in it (only punctuation or symbols)",
        ));
    }
    Ok(parsed)
}

/// Rewrites `a AND NOT b` as `a NOT b` outside quotes. Tantivy parses the former as
/// `+a +(-b)`, and a clause holding only an exclusion matches nothing; with conjunction by
/// default, `a NOT b` is `+a -b`, which is what the user meant.
fn and_not_to_not(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut in_quotes = false;
    let mut i = 0;
    let bytes = query.as_bytes();
    while i < bytes.len() {
        let rest = &query[i..];
        let at_word_start = i == 0 || bytes[i - 1].is_ascii_whitespace() || bytes[i - 1] == b'(';
        if !in_quotes && at_word_start && rest.starts_with("AND") {
            let after = rest[3..].trim_start();
            let gap = rest.len() - 3 - after.len();
            if gap > 0 && after.starts_with("NOT") && after[3..].starts_with(char::is_whitespace) {
                i += 3 + gap;
                continue;
            }
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        if c == '"' {
            in_quotes = !in_quotes;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Runs a search on the index of a store.
///
/// # Errors
/// [`IndexError::EmptyQuery`], [`IndexError::UnknownField`], [`IndexError::BadQuery`] for a bad
/// query ([`IndexError::is_bad_query`]); [`IndexError::NotBuilt`]; [`IndexError::Tantivy`] when
/// the index cannot be read.
pub fn search(paths: &StorePaths, request: &SearchRequest) -> Result<SearchResults, IndexError> {
    let opened = open(paths)?;
    let fields = opened.fields;
    let dir = opened.dir.clone();
    let user_query = parse(&fields, &opened.index, &request.query)?;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user_query.box_clone())];
    if let Some(session) = &request.session {
        clauses.push((Occur::Must, keyword_term(fields.session, session)));
    }
    if let Some(source) = request.source {
        clauses.push((Occur::Must, keyword_term(fields.source, source.as_str())));
    }
    if let Some(event) = &request.event {
        clauses.push((Occur::Must, keyword_term(fields.event, event)));
    }
    if let Some(tool) = &request.tool {
        clauses.push((Occur::Must, keyword_term(fields.tool, tool)));
    }
    if request.time.since.is_some() || request.time.until.is_some() {
        let bound = |b: Option<u64>| match b {
            Some(ts) => Bound::Included(Term::from_field_u64(fields.ts, ts)),
            None => Bound::Unbounded,
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                bound(request.time.since),
                bound(request.time.until),
            )),
        ));
    }
    let query: Box<dyn Query> = if clauses.len() == 1 {
        user_query.box_clone()
    } else {
        Box::new(BooleanQuery::new(clauses))
    };
    let reader = match reader_of(&opened.index) {
        // The reader's lock file cannot be created (a read-only store): read without it.
        Err(tantivy::TantivyError::LockFailure(..)) => {
            let read_only = super::read_only::open(&dir).map_err(tantivy_err(&dir, "opening"))?;
            super::register_tokenizers(&read_only);
            reader_of(&read_only)
        }
        other => other,
    }
    .map_err(tantivy_err(&dir, "opening a reader"))?;
    let searcher = reader.searcher();
    let limit = request.limit.max(1);
    let (found, total): (Vec<Found>, usize) = match request.sort {
        SortOrder::Score => {
            let (top, total) = searcher
                .search(
                    query.as_ref(),
                    &(TopDocs::with_limit(limit).order_by_score(), Count),
                )
                .map_err(tantivy_err(&dir, "searching"))?;
            (
                top.into_iter()
                    .map(|(score, addr)| (Some(score), None, addr))
                    .collect(),
                total,
            )
        }
        SortOrder::Time => {
            let (top, total) = searcher
                .search(
                    query.as_ref(),
                    &(
                        TopDocs::with_limit(limit).order_by_u64_field("ts", Order::Desc),
                        Count,
                    ),
                )
                .map_err(tantivy_err(&dir, "searching"))?;
            (
                top.into_iter().map(|(ts, addr)| (None, ts, addr)).collect(),
                total,
            )
        }
    };
    let hits = resolve(&searcher, &dir, found)?;
    let generator = SnippetGenerator::create(&searcher, user_query.as_ref(), fields.text)
        .map_err(tantivy_err(&dir, "preparing snippets"))?;
    Ok(SearchResults {
        hits,
        total: total as u64,
        highlighter: Highlighter { generator },
    })
}

/// A hit before its offset is read: score, time (when sorted by it), address.
type Found = (Option<f32>, Option<u64>, DocAddress);

fn resolve(
    searcher: &Searcher,
    dir: &std::path::Path,
    found: Vec<Found>,
) -> Result<Vec<Hit>, IndexError> {
    let mut hits = Vec::with_capacity(found.len());
    for (score, ts, addr) in found {
        let segment = searcher.segment_reader(addr.segment_ord);
        let fast = segment.fast_fields();
        let offsets = fast
            .u64("offset")
            .map_err(tantivy_err(dir, "reading the offset column"))?;
        let Some(offset) = offsets.first(addr.doc_id) else {
            continue;
        };
        let ts = match ts {
            Some(ts) => ts,
            None => fast
                .u64("ts")
                .map_err(tantivy_err(dir, "reading the time column"))?
                .first(addr.doc_id)
                .unwrap_or(0),
        };
        hits.push(Hit {
            offset: Offset(offset),
            ts,
            score,
        });
    }
    Ok(hits)
}

fn reader_of(index: &tantivy::Index) -> tantivy::Result<tantivy::IndexReader> {
    index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_not_is_rewritten_outside_quotes() {
        assert_eq!(and_not_to_not("a AND NOT b"), "a NOT b");
        assert_eq!(and_not_to_not("a AND  NOT  b AND c"), "a NOT  b AND c");
        assert_eq!(and_not_to_not("\"a AND NOT b\""), "\"a AND NOT b\"");
        assert_eq!(and_not_to_not("BAND NOTE"), "BAND NOTE");
        assert_eq!(and_not_to_not("a AND NOTb"), "a AND NOTb");
    }

    #[test]
    fn folding_keeps_highlights_on_their_words() {
        let text = "a\n\n  error: 数据\tb";
        let e = text.find("error").unwrap();
        let d = text.find("数据").unwrap();
        let s = fold_whitespace(text, &[e..e + 5, d..d + "数据".len()]);
        assert_eq!(s.fragment, "a error: 数据 b");
        assert_eq!(&s.fragment[s.highlights[0].clone()], "error");
        assert_eq!(&s.fragment[s.highlights[1].clone()], "数据");
    }
}
