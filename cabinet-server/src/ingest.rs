//! What to do with a batch, decided without I/O: given the register's stored chain head
//! and the hashes it already holds for the batch's old seqs, each entry is a duplicate, a
//! new entry (accepted or rejected with a reason), or the whole batch is refused.

use protocol::{ChainHash, ChainHead, Document, Entry, EntryStatus, Event, Payload, Seq};

/// A new entry to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry<'a> {
    /// The entry as received.
    pub entry: &'a Entry,
    /// What it holds, when it could be read.
    pub content: Content,
    /// Accepted, or rejected with the reason.
    pub verdict: Verdict,
}

/// What a new entry holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// A document.
    Document(Box<Document>),
    /// An event.
    Event(Event),
    /// Bytes this server cannot read (a newer agent's format, say).
    Unreadable,
}

/// Whether a new entry is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Stored as accepted.
    Accepted,
    /// Stored as rejected, with the reason.
    Rejected(String),
}

/// The plan for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<'a> {
    /// Per entry of the batch, in order: its status and reason.
    pub results: Vec<(Seq, EntryStatus, Option<String>)>,
    /// The entries to store, in order.
    pub new: Vec<NewEntry<'a>>,
    /// The head after storing them.
    pub head: ChainHead,
}

/// Why a batch is refused whole (`409`); nothing of it is stored, and the register is
/// flagged for the operator: none of these happens while both sides keep what they
/// acknowledged (the agent resends from its first unacknowledged entry), so each means
/// lost or altered data on one side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainRefusal {
    /// The batch starts beyond what the server holds: resend from `accepted_through + 1`.
    #[error("пропуск в последовательности: сервер хранит записи по {accepted_through}, получена {got}")]
    Gap {
        /// The highest seq held.
        accepted_through: Seq,
        /// The first seq received.
        got: Seq,
    },
    /// An entry the server holds came again with another hash: the register's history
    /// differs from what it sent before.
    #[error("запись {seq} уже получена с другим хешем")]
    Conflict {
        /// The entry.
        seq: Seq,
    },
    /// A new entry does not link to its predecessor or its hash does not match its payload.
    #[error("цепочка нарушена: {0}")]
    BrokenChain(protocol::ChainError),
}

impl ChainRefusal {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ChainRefusal::Gap { .. } => "chain_gap",
            ChainRefusal::Conflict { .. } => "chain_conflict",
            ChainRefusal::BrokenChain(_) => "chain_broken",
        }
    }
}

/// What the server holds of an old entry: its hash, and the reason if it was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The stored hash.
    pub hash: ChainHash,
    /// Why it was rejected, if it was.
    pub rejected: Option<String>,
}

/// Plans `entries` against the stored `head`; `held(seq)` gives what is stored for an old
/// seq. A duplicate of an entry rejected before is answered with that reason, so a sender
/// that lost the first answer still learns the verdict.
pub fn plan<'a>(
    head: ChainHead,
    entries: &'a [Entry],
    held: impl Fn(Seq) -> Option<Held>,
) -> Result<Plan<'a>, ChainRefusal> {
    let mut results = Vec::with_capacity(entries.len());
    let mut new = Vec::new();
    let mut chain = head;
    for entry in entries {
        if entry.seq <= head.seq {
            // Already held: it must be the same entry, with a payload that still matches its
            // hash (a replay with an altered payload is not a duplicate).
            if ChainHash::link(&entry.prev_hash, &entry.payload) != entry.hash {
                return Err(ChainRefusal::Conflict { seq: entry.seq });
            }
            match held(entry.seq) {
                Some(held) if held.hash == entry.hash => {
                    results.push((entry.seq, EntryStatus::Duplicate, held.rejected));
                    continue;
                }
                _ => return Err(ChainRefusal::Conflict { seq: entry.seq }),
            }
        }
        if new.is_empty() && entry.seq > chain.seq.next() {
            return Err(ChainRefusal::Gap { accepted_through: chain.seq, got: entry.seq });
        }
        chain.advance(entry).map_err(ChainRefusal::BrokenChain)?;
        let (content, verdict) = judge(&entry.payload);
        results.push((
            entry.seq,
            match verdict {
                Verdict::Accepted => EntryStatus::Accepted,
                Verdict::Rejected(_) => EntryStatus::Rejected,
            },
            match &verdict {
                Verdict::Accepted => None,
                Verdict::Rejected(reason) => Some(reason.clone()),
            },
        ));
        new.push(NewEntry { entry, content, verdict });
    }
    Ok(Plan { results, new, head: chain })
}

/// Reads a payload and decides whether it can be accepted.
fn judge(payload: &[u8]) -> (Content, Verdict) {
    match Payload::from_cbor(payload) {
        Err(e) => (Content::Unreadable, Verdict::Rejected(format!("содержимое не распознано: {e}"))),
        Ok(Payload::Event(event)) => (Content::Event(event), Verdict::Accepted),
        Ok(Payload::Document(document)) => {
            let verdict = match document.check() {
                Ok(()) => Verdict::Accepted,
                Err(e) => Verdict::Rejected(e.to_string()),
            };
            (Content::Document(Box::new(document)), verdict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use protocol::{DocumentBody, DocumentNumber, EventCode, ShiftNumber, Tenders};

    fn event_payload(minute: u32) -> Vec<u8> {
        let at = DateTime::parse_from_rfc3339(&format!("2024-10-11T15:{minute:02}:00+03:00")).unwrap();
        Payload::Event(Event { code: EventCode::PowerOn, created_at: at, parameter: None }).to_cbor()
    }

    fn chain(payloads: Vec<Vec<u8>>) -> Vec<Entry> {
        let mut head = ChainHead::EMPTY;
        payloads
            .into_iter()
            .map(|p| {
                let e = Entry::after(&head, p);
                head = ChainHead { seq: e.seq, hash: e.hash };
                e
            })
            .collect()
    }

    fn lookup(stored: &[Entry]) -> impl Fn(Seq) -> Option<Held> + Copy + '_ {
        |seq| stored.iter().find(|e| e.seq == seq).map(|e| Held { hash: e.hash, rejected: None })
    }

    #[test]
    fn a_duplicate_of_a_rejected_entry_carries_its_reason() {
        let entries = chain((0..2).map(event_payload).collect());
        let held = |seq: Seq| {
            entries
                .iter()
                .find(|e| e.seq == seq)
                .map(|e| Held { hash: e.hash, rejected: Some("причина".into()) })
        };
        let plan = plan(head_of(&entries), &entries, held).unwrap();
        assert_eq!(plan.results[0], (Seq(1), EntryStatus::Duplicate, Some("причина".into())));
    }

    fn head_of(entries: &[Entry]) -> ChainHead {
        entries.last().map_or(ChainHead::EMPTY, |e| ChainHead { seq: e.seq, hash: e.hash })
    }

    #[test]
    fn new_entries_are_accepted_and_old_ones_are_duplicates() {
        let entries = chain((0..5).map(event_payload).collect());
        let stored = &entries[..2];
        let plan = plan(head_of(stored), &entries, lookup(stored)).unwrap();
        let statuses: Vec<_> = plan.results.iter().map(|r| r.1).collect();
        use EntryStatus::*;
        assert_eq!(statuses, [Duplicate, Duplicate, Accepted, Accepted, Accepted]);
        assert_eq!(plan.new.len(), 3);
        assert_eq!(plan.head, head_of(&entries));
    }

    #[test]
    fn a_gap_a_conflict_and_a_broken_link_refuse_the_batch() {
        let entries = chain((0..5).map(event_payload).collect());
        let stored = &entries[..2];
        let lookup = lookup(stored);
        assert_eq!(
            plan(head_of(stored), &entries[3..], lookup),
            Err(ChainRefusal::Gap { accepted_through: Seq(2), got: Seq(4) })
        );
        let other = chain((10..12).map(event_payload).collect());
        assert_eq!(plan(head_of(stored), &other, lookup), Err(ChainRefusal::Conflict { seq: Seq(1) }));
        let mut replayed = stored.to_vec();
        replayed[1].payload = event_payload(58);
        assert_eq!(plan(head_of(stored), &replayed, lookup), Err(ChainRefusal::Conflict { seq: Seq(2) }));
        let mut altered = entries[2..].to_vec();
        altered[1].payload = event_payload(59);
        let refusal = plan(head_of(stored), &altered, lookup).unwrap_err();
        assert!(matches!(&refusal, ChainRefusal::BrokenChain(e) if e.seq == Seq(4)), "{refusal:?}");
    }

    #[test]
    fn a_document_that_does_not_add_up_is_rejected_and_the_chain_goes_on() {
        let at = DateTime::parse_from_rfc3339("2024-10-11T15:00:00+03:00").unwrap();
        let bad = Payload::Document(Document {
            number: DocumentNumber(1),
            shift: ShiftNumber(1),
            created_at: at,
            cashier: "И".into(),
            body: DocumentBody::Annulment { ref_number: DocumentNumber(9), tenders: Tenders::ZERO },
        });
        let entries = chain(vec![event_payload(0), bad.to_cbor(), b"\xff not cbor".to_vec(), event_payload(1)]);
        let plan = plan(ChainHead::EMPTY, &entries, |_| None).unwrap();
        let statuses: Vec<_> = plan.results.iter().map(|r| r.1).collect();
        use EntryStatus::*;
        assert_eq!(statuses, [Accepted, Rejected, Rejected, Accepted]);
        assert!(plan.results[1].2.as_ref().unwrap().contains("больше нуля"));
        assert_eq!(plan.new[2].content, Content::Unreadable);
        assert_eq!(plan.head.seq, Seq(4));
    }
}
