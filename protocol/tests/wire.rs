//! The wire format cannot drift unnoticed: a batch and an answer are compared byte for byte
//! with committed files (`UPDATE_GOLDEN=1` rewrites them after a deliberate change), and the
//! decoder's limits are exercised.

use std::path::PathBuf;

use protocol::wire::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, PROTOCOL_VERSION};
use protocol::{
    Answer, Batch, ChainHead, DeviceInfo, Directive, Document, DocumentBody, DocumentNumber, Entry, EntryResult,
    EntryStatus, Event, EventCode, Item, Payload, Refusal, Seq, ShiftNumber, Tenders, WireError,
};

fn time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

fn sample_batch() -> Batch {
    let payment = Payload::Document(Document {
        number: DocumentNumber(4320),
        shift: ShiftNumber(71),
        created_at: time("2024-10-11T15:04:50+03:00"),
        cashier: "Иванов".into(),
        body: DocumentBody::Payment {
            items: vec![Item {
                name: "Шоколад молочный \"Ritter sport\" ром изюм орех 100г".into(),
                gtin: Some("3702760306879".into()),
                section: 3,
                price: "4.79".parse().unwrap(),
                quantity: "1.000".parse().unwrap(),
            }],
            tenders: Tenders::cash("4.79".parse().unwrap()),
        },
    });
    let opened = Payload::Event(Event {
        code: EventCode::ShiftOpened,
        created_at: time("2024-10-11T15:04:05+03:00"),
        parameter: Some("71".into()),
    });
    let first = Entry::after(&ChainHead::EMPTY, opened.to_cbor());
    let second = Entry::after(&ChainHead { seq: first.seq, hash: first.hash }, payment.to_cbor());
    Batch {
        protocol: PROTOCOL_VERSION,
        reg_number: "119026501".parse().unwrap(),
        device: DeviceInfo {
            info: "9.1.18.1 - TitanPos Mobile".into(),
            pos_version: "2.1.0".into(),
            agent_version: "0.1.0".into(),
            tsok_expires_at: Some(time("2027-09-19T23:59:59+03:00")),
            pending: 2,
            oldest_pending_at: Some(time("2024-10-11T15:04:05+03:00")),
            sent_at: time("2024-10-11T15:04:51+03:00"),
        },
        entries: vec![first, second],
    }
}

fn sample_answer() -> Answer {
    Answer {
        accepted_through: Seq(2),
        results: vec![
            EntryResult { seq: Seq(1), status: EntryStatus::Duplicate, reason: None },
            EntryResult {
                seq: Seq(2), status: EntryStatus::Rejected, reason: Some("сумма оплат не равна".into())
            },
        ],
        directives: vec![Directive::Block { reason: "решение оператора".into() }],
        server_time: time("2024-10-11T12:04:52+00:00"),
    }
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// Compares `bytes` with the committed file, or rewrites it when `UPDATE_GOLDEN` is set.
fn check_golden(name: &str, bytes: &[u8]) {
    let path = data(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, bytes).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(committed == bytes, "{name} drifted from the committed bytes; if deliberate, rerun with UPDATE_GOLDEN=1");
}

#[test]
fn batch_bytes_are_stable() {
    let batch = sample_batch();
    let bytes = batch.encode();
    check_golden("batch.cbor", &bytes);
    assert_eq!(Batch::decode(&std::fs::read(data("batch.cbor")).unwrap()).unwrap(), batch);
}

#[test]
fn answer_bytes_are_stable() {
    let answer = sample_answer();
    check_golden("answer.cbor", &answer.encode());
    assert_eq!(Answer::decode(&std::fs::read(data("answer.cbor")).unwrap()).unwrap(), answer);
}

#[test]
fn refusal_round_trips() {
    let refusal =
        Refusal { code: "chain_gap".into(), message: "пропуск".into(), accepted_through: Some(Seq(7)) };
    assert_eq!(Refusal::decode(&refusal.encode()).unwrap(), refusal);
}

#[test]
fn payloads_decode_to_what_was_journaled() {
    for entry in sample_batch().entries {
        let payload = Payload::from_cbor(&entry.payload).unwrap();
        assert_eq!(payload.to_cbor(), entry.payload);
    }
}

#[test]
fn decoder_refuses_oversized_bodies_before_parsing() {
    let huge = vec![0u8; MAX_BATCH_BYTES + 1];
    assert!(matches!(Batch::decode(&huge), Err(WireError::TooLarge { size, .. }) if size == MAX_BATCH_BYTES + 1));
}

#[test]
fn decoder_refuses_garbage_and_wrong_shapes() {
    for bytes in [&b""[..], b"\xff\xff\xff", b"not cbor at all", &protocol::wire::encode(&"a string")] {
        assert!(matches!(Batch::decode(bytes), Err(WireError::Malformed(_))), "{bytes:?}");
    }
    // A batch missing its device info.
    #[derive(serde::Serialize)]
    struct Partial {
        protocol: u32,
        reg_number: &'static str,
    }
    let partial = protocol::wire::encode(&Partial { protocol: 1, reg_number: "119026501" });
    assert!(matches!(Batch::decode(&partial), Err(WireError::Malformed(_))));
    // Truncated anywhere.
    let bytes = sample_batch().encode();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(Batch::decode(&bytes[..cut]), Err(WireError::Malformed(_))), "cut at {cut}");
    }
}

#[test]
fn decoder_refuses_deep_nesting() {
    // 10,000 nested one-element arrays: refused without exhausting the stack.
    let mut bytes = vec![0x81; 10_000];
    bytes.push(0x00);
    assert!(matches!(Batch::decode(&bytes), Err(WireError::Malformed(_))));
}

#[test]
fn decoder_refuses_other_versions_and_too_many_entries() {
    let mut batch = sample_batch();
    batch.protocol = 2;
    assert!(matches!(Batch::decode(&batch.encode()), Err(WireError::UnsupportedVersion(2))));

    let mut batch = sample_batch();
    let entry = batch.entries[0].clone();
    batch.entries = vec![entry; MAX_BATCH_ENTRIES + 1];
    assert!(matches!(Batch::decode(&batch.encode()), Err(WireError::TooManyEntries(n)) if n == MAX_BATCH_ENTRIES + 1));
}

#[test]
fn unknown_event_codes_survive_the_wire() {
    let payload = Payload::Event(Event {
        code: EventCode::from_code(4242),
        created_at: time("2024-10-11T15:04:05+03:00"),
        parameter: None,
    });
    let back = Payload::from_cbor(&payload.to_cbor()).unwrap();
    assert_eq!(back, payload);
    let Payload::Event(event) = back else { unreachable!() };
    assert_eq!(event.code.label(), "Код 4242");
}
