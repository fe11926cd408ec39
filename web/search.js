// Search results (#/search?q=&session=): hits from /api/search, each opening its session at
// the record (#/session/<id>?at=<offset>).

import { h, fill, api, query, errorBox, when, shortId } from './util.js';

const LIMIT = 50;

/** The snippet with its highlighted ranges in <mark> (ranges are UTF-8 byte offsets). */
function snippet(text, highlights) {
  const bytes = new TextEncoder().encode(text || '');
  const decoder = new TextDecoder();
  const part = (a, b) => decoder.decode(bytes.slice(a, b));
  const out = [];
  let at = 0;
  for (const [start, end] of (highlights || []).slice().sort((a, b) => a[0] - b[0])) {
    if (start < at || end <= start || end > bytes.length) continue;
    out.push(part(at, start), h('mark', {}, part(start, end)));
    at = end;
  }
  out.push(part(at));
  return out;
}

/** Renders the hits for the route's `q` (and `session`) into `main`. */
export async function renderSearch(main, params) {
  const q = params.get('q') || '';
  const session = params.get('session') || '';
  const input = document.getElementById('search-q');
  if (input && !input.value) input.value = q;
  fill(main, h('h2', {}, 'Search: ', h('q', {}, q)), h('p', { class: 'loading' }, 'Searching…'));
  let answer;
  try {
    answer = await api(`/api/search${query({ q, session, limit: LIMIT })}`);
  } catch (e) {
    fill(main, h('h2', {}, 'Search: ', h('q', {}, q)), errorBox('Searching', e));
    return;
  }
  const hits = answer.hits || [];
  fill(main, h('h2', {}, 'Search: ', h('q', {}, q)),
    h('p', { id: 'search-total' }, `${answer.total ?? hits.length} hits${session ? ` in session ${shortId(session)}` : ''}${hits.length < (answer.total ?? 0) ? `, first ${hits.length} shown` : ''}.`),
    hits.length === 0 ? h('p', { class: 'empty' }, 'Nothing found.') :
      h('ol', { class: 'hits', id: 'search-hits' }, hits.map((hit) => h('li', {},
        h('a', { href: `#/session/${encodeURIComponent(hit.session)}?at=${hit.offset}` },
          h('code', {}, shortId(hit.session)), ` #${hit.offset}`), ' ',
        h('time', { datetime: hit.time }, when(hit.time)), ' ',
        h('span', { class: 'meta' }, [hit.source, hit.event, (hit.tools || []).join(' ')].filter(Boolean).join(' · ')),
        h('p', { class: 'snippet' }, snippet(hit.snippet, hit.highlights))))));
}
