//! Redaction of records: every text a record carries, and a recording's PTY streams as
//! streams (a secret split across records is still found).

use super::Redactor;
#[cfg(test)]
use super::StreamRedactor;
use crate::model::{Body, PtyKind, Record};

impl Redactor {
    /// Redacts every text a record carries (raw payload or line, extracted fields, PTY data
    /// and start fields) and adds the number of replacements in the raw bytes to
    /// `record.redactions`. Returns that number.
    pub fn redact_record(&self, record: &mut Record) -> u32 {
        if self.is_empty() {
            return 0;
        }
        // Returns the replacements made in the field.
        let field = |value: &mut Option<String>| -> u32 {
            if let Some(text) = value.as_mut()
                && let Some((bytes, n)) = self.redact(text.as_bytes())
            {
                *text = String::from_utf8_lossy(&bytes).into_owned();
                return n;
            }
            0
        };
        let count = match &mut record.body {
            Body::Hook(hook) => {
                let (raw, n) = self.redact_json(std::mem::take(&mut hook.raw));
                hook.raw = raw;
                // Every stored string, not only the payload: an extracted field can hold a
                // secret the payload had escaped, or that was cut off from it. Fields repeat
                // the payload, so they add to the count only when the payload had none.
                let mut in_fields = 0;
                {
                    for value in [
                        &mut hook.event,
                        &mut hook.tool_name,
                        &mut hook.tool_use_id,
                        &mut hook.agent_id,
                        &mut hook.agent_type,
                        &mut hook.prompt_id,
                        &mut hook.cwd,
                        &mut hook.transcript_path,
                        &mut hook.agent_transcript_path,
                        &mut hook.pty_session,
                    ] {
                        in_fields += field(value);
                    }
                }
                if n == 0 { in_fields } else { n }
            }
            Body::Transcript(line) => {
                let (raw, n) = self.redact_json(std::mem::take(&mut line.raw));
                line.raw = raw;
                let mut in_fields = 0;
                {
                    for value in [
                        &mut line.line_type,
                        &mut line.subtype,
                        &mut line.uuid,
                        &mut line.parent_uuid,
                        &mut line.request_id,
                        &mut line.message_id,
                        &mut line.model,
                        &mut line.agent_id,
                    ] {
                        in_fields += field(value);
                    }
                }
                if n == 0 { in_fields } else { n }
            }
            Body::Pty(pty) => {
                let mut n = 0;
                if pty.kind == PtyKind::Start {
                    // The start record's data is the asciicast header (JSON).
                    let (data, k) = self.redact_json(std::mem::take(&mut pty.data));
                    pty.data = data;
                    n += k;
                } else if let Some((data, k)) = self.redact(&pty.data) {
                    pty.data = data;
                    n += k;
                }
                for value in [&mut pty.command, &mut pty.cwd, &mut pty.term] {
                    // Counted in `data` (the start header repeats the command).
                    let _ = field(value);
                }
                n
            }
            Body::Otlp(otlp) => {
                // Strings inside the protobuf request: decoded, redacted, encoded again (a
                // truncated record's bytes do not decode and are redacted as bytes).
                let mut n = 0;
                match crate::otlp::Request::from_raw(otlp.signal, &otlp.raw) {
                    Ok(mut request) => {
                        request.strings(&mut |s| {
                            if let Some((bytes, k)) = self.redact(s.as_bytes()) {
                                *s = String::from_utf8_lossy(&bytes).into_owned();
                                n += k;
                            }
                        });
                        if n > 0 {
                            otlp.raw = request.encode_protobuf();
                        }
                    }
                    Err(_) => {
                        if let Some((bytes, k)) = self.redact(&otlp.raw) {
                            otlp.raw = bytes;
                            n = k;
                        }
                    }
                }
                let mut in_fields = 0;
                for value in [
                    &mut otlp.name,
                    &mut otlp.prompt_id,
                    &mut otlp.request_id,
                    &mut otlp.tool_use_id,
                ] {
                    in_fields += field(value);
                }
                if n == 0 { in_fields } else { n }
            }
            Body::Internal(internal) => match self.redact(internal.detail.as_bytes()) {
                Some((bytes, n)) => {
                    internal.detail = String::from_utf8_lossy(&bytes).into_owned();
                    n
                }
                None => 0,
            },
        };
        let mut count = count;
        if let Some(session) = record.session.as_mut()
            && let Some((bytes, n)) = self.redact(session.as_bytes())
        {
            *session = String::from_utf8_lossy(&bytes).into_owned();
            count = count.saturating_add(n);
        }
        record.redactions = record.redactions.saturating_add(count);
        count
    }

    /// Redacts a sequence of PTY records (an imported recording): output and input events
    /// are treated as two streams, so a secret split across events is found; other records
    /// are redacted on their own. A stream without any secret is left exactly as it was, event
    /// boundaries included (an asciicast round trip stays byte-identical); in a stream with a
    /// secret, held-back bytes move to the next event of their stream.
    #[cfg(test)]
    pub(crate) fn redact_pty_records(&self, records: &mut [Record]) {
        if self.is_empty() {
            return;
        }
        for kind in [PtyKind::Output, PtyKind::Input] {
            self.redact_pty_stream(records, kind);
        }
        for record in records.iter_mut() {
            let streamed = matches!(
                &record.body,
                Body::Pty(pty) if matches!(pty.kind, PtyKind::Output | PtyKind::Input)
            );
            if !streamed {
                self.redact_record(record);
            }
        }
    }

    /// Redacts the events of one kind as one stream (see [`Self::redact_pty_records`]).
    #[cfg(test)]
    fn redact_pty_stream(&self, records: &mut [Record], kind: PtyKind) {
        let indices: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(&r.body, Body::Pty(pty) if pty.kind == kind))
            .map(|(i, _)| i)
            .collect();
        // A dry run first: most recordings hold no secret, and then nothing may move.
        let mut probe = StreamRedactor::default();
        let mut found = 0u32;
        for &i in &indices {
            if let Some(Record {
                body: Body::Pty(pty),
                ..
            }) = records.get(i)
            {
                found = found.saturating_add(probe.push(self, &pty.data).1);
            }
        }
        found = found.saturating_add(probe.finish(self).1);
        if found == 0 {
            return;
        }
        let mut stream = StreamRedactor::default();
        let mut last = None;
        for &i in &indices {
            if let Some(record) = records.get_mut(i)
                && let Body::Pty(pty) = &mut record.body
            {
                let (data, n) = stream.push(self, &pty.data);
                pty.data = data;
                record.redactions = record.redactions.saturating_add(n);
                last = Some(i);
            }
        }
        if let Some(record) = last.and_then(|i| records.get_mut(i))
            && let Body::Pty(pty) = &mut record.body
        {
            let (tail, n) = stream.finish(self);
            pty.data.extend_from_slice(&tail);
            record.redactions = record.redactions.saturating_add(n);
        }
    }
}
