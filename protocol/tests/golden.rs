//! The manual's day (`tests/golden/seed-day.json`) run through the protocol's arithmetic:
//! numbering by hand, everything else by the crate.

use chrono::{DateTime, FixedOffset};
use protocol::{
    ChainHead, Document, DocumentBody, DocumentKind, DocumentNumber, Entry, Event, EventCode, Item, Money, Payload,
    ReceiptHeader, ShiftNumber, ShiftReport, SignedMoney, Standing, Summary, Tenders, Uid, cash_effect, receipt_text,
    verify_chain,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Golden {
    register: Register,
    shift: u32,
    first_number: u64,
    steps: Vec<Step>,
    expect_cash_in_drawer_after: Money,
    expect_summary: Value,
    expect_events: Vec<ExpectEvent>,
    expect_receipt_4319: String,
    expect_receipt_4320: String,
}

#[derive(Deserialize)]
struct Register {
    unp: protocol::Unp,
    org_name: String,
    reg_number: protocol::RegNumber,
    cumulative_total_before: Money,
    cash_in_drawer_before: Money,
}

#[derive(Deserialize)]
struct Step {
    at: DateTime<FixedOffset>,
    event: Option<u32>,
    open_shift: Option<Cashier>,
    close_shift: Option<Cashier>,
    document: Option<PosDocument>,
    expect_number: Option<u64>,
    expect_total: Option<Money>,
    expect_cumulative_total: Option<Money>,
    expect_event: Option<ExpectEvent>,
}

#[derive(Deserialize)]
struct Cashier {
    cashier: String,
}

/// A body of CONTRACTS §1's `POST /v1/documents`.
#[derive(Deserialize)]
struct PosDocument {
    kind: DocumentKind,
    cashier: String,
    #[serde(default)]
    items: Vec<Item>,
    tenders: Option<Tenders>,
    amount: Option<Money>,
    ref_number: Option<DocumentNumber>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct ExpectEvent {
    code: u32,
    label: Option<String>,
    parameter: Option<String>,
}

/// Everything the day journaled, in order.
struct Day {
    entries: Vec<Entry>,
    documents: Vec<(Document, Uid)>,
    events: Vec<Event>,
}

fn load() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/seed-day.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("golden JSON")
}

fn run_day(golden: &Golden) -> Day {
    let reg = golden.register.reg_number;
    let shift = ShiftNumber(golden.shift);
    let mut head = ChainHead::EMPTY;
    let mut day = Day { entries: vec![], documents: vec![], events: vec![] };
    let mut next_number = DocumentNumber(golden.first_number);
    let mut shift_summary = Summary::default();
    let mut opened_at = None;
    let journal = |payload: Payload, head: &mut ChainHead, day: &mut Day| {
        let entry = Entry::after(head, payload.to_cbor());
        *head = ChainHead { seq: entry.seq, hash: entry.hash };
        let uid = Uid::new(&entry.hash, reg);
        day.entries.push(entry);
        match payload {
            Payload::Document(d) => day.documents.push((d, uid)),
            Payload::Event(e) => day.events.push(e),
        }
    };
    let event =
        |code: EventCode, at, parameter: Option<String>| Payload::Event(Event { code, created_at: at, parameter });

    for step in &golden.steps {
        if let Some(code) = step.event {
            journal(event(EventCode::from_code(code), step.at, None), &mut head, &mut day);
        }
        if step.open_shift.is_some() {
            opened_at = Some(step.at);
            journal(event(EventCode::ShiftOpened, step.at, Some(shift.to_string())), &mut head, &mut day);
        }
        if let Some(pos) = &step.document {
            let body = match pos.kind {
                DocumentKind::Payment => {
                    DocumentBody::Payment { items: pos.items.clone(), tenders: pos.tenders.unwrap() }
                }
                DocumentKind::Return => DocumentBody::Return {
                    ref_number: pos.ref_number,
                    items: pos.items.clone(),
                    tenders: pos.tenders.unwrap(),
                },
                DocumentKind::Annulment => {
                    let target = pos.ref_number.unwrap();
                    let (annulled, _) = day.documents.iter().find(|(d, _)| d.number == target).unwrap();
                    let DocumentBody::Payment { tenders, .. } = annulled.body else { panic!("annulled a non-payment") };
                    DocumentBody::Annulment { ref_number: target, tenders }
                }
                DocumentKind::CashIn => DocumentBody::CashIn { amount: pos.amount.unwrap() },
                DocumentKind::CashOut => DocumentBody::CashOut { amount: pos.amount.unwrap() },
                DocumentKind::Payout => DocumentBody::Payout { amount: pos.amount.unwrap() },
                DocumentKind::ShiftReport => unreachable!("the POS app cannot post a shift report"),
            };
            shift_summary.add_body(&body);
            let document =
                Document { number: next_number, shift, created_at: step.at, cashier: pos.cashier.clone(), body };
            document.check().expect("the golden documents are valid");
            assert_eq!(Some(next_number.0), step.expect_number);
            if let Some(total) = step.expect_total {
                assert_eq!(document.figures().total, total);
            }
            next_number = next_number.next();
            journal(Payload::Document(document), &mut head, &mut day);
        }
        if let Some(close) = &step.close_shift {
            let report = ShiftReport::new(opened_at.unwrap(), &shift_summary, golden.register.cumulative_total_before);
            assert_eq!(Some(report.cumulative_total), step.expect_cumulative_total);
            let document = Document {
                number: DocumentNumber(shift.0.into()),
                shift,
                created_at: step.at,
                cashier: close.cashier.clone(),
                body: DocumentBody::ShiftReport(report),
            };
            document.check().expect("the shift report is consistent");
            assert_eq!(Some(document.number.0), step.expect_number);
            journal(Payload::Document(document), &mut head, &mut day);
            journal(event(EventCode::ShiftClosed, step.at, Some(shift.to_string())), &mut head, &mut day);
        }
        if let Some(expected) = &step.expect_event {
            let last = day.events.last().unwrap();
            assert_eq!(last.code.code(), expected.code);
            assert_eq!(last.parameter, expected.parameter);
        }
    }
    day
}

#[test]
fn golden_day_gives_the_manuals_summary() {
    let golden = load();
    let day = run_day(&golden);
    let mut summary = Summary::default();
    for (document, _) in &day.documents {
        summary.add(document.kind(), &document.figures(), Standing::Counted);
    }
    let mut expected = golden.expect_summary.clone();
    expected.as_object_mut().unwrap().remove("period");
    assert_eq!(serde_json::to_value(summary).unwrap(), expected);
}

#[test]
fn golden_day_leaves_an_empty_drawer_and_the_manuals_cumulative_total() {
    let golden = load();
    let day = run_day(&golden);
    let start = SignedMoney::from(golden.register.cash_in_drawer_before);
    let drawer = day.documents.iter().map(|(d, _)| cash_effect(&d.body)).fold(start, |a, b| a + b);
    assert_eq!(drawer, SignedMoney::from(golden.expect_cash_in_drawer_after));
    let (report, _) = day.documents.last().unwrap();
    let DocumentBody::ShiftReport(report) = &report.body else { panic!("the day ends with its shift report") };
    assert_eq!(report.cumulative_total.to_string(), "93706.95");
    assert_eq!(report.tenders.total().to_string(), "14.37");
}

#[test]
fn golden_day_prints_the_manuals_receipts() {
    let golden = load();
    let day = run_day(&golden);
    let header = ReceiptHeader {
        org_name: golden.register.org_name.clone(),
        unp: golden.register.unp,
        reg_number: golden.register.reg_number,
    };
    for (number, expected) in [(4319, &golden.expect_receipt_4319), (4320, &golden.expect_receipt_4320)] {
        let (document, uid) = day.documents.iter().find(|(d, _)| d.number.0 == number).unwrap();
        assert!(uid.as_str().ends_with("07183345"), "{uid}");
        assert_eq!(receipt_text(&header, document, uid), expected.replace("<uid>", uid.as_str()));
    }
}

#[test]
fn golden_day_records_the_manuals_events_on_an_intact_chain() {
    let golden = load();
    let day = run_day(&golden);
    let events: Vec<ExpectEvent> = day
        .events
        .iter()
        .map(|e| ExpectEvent { code: e.code.code(), label: Some(e.code.label()), parameter: e.parameter.clone() })
        .collect();
    assert_eq!(events, golden.expect_events);

    let head = verify_chain(ChainHead::EMPTY, &day.entries).unwrap();
    assert_eq!(head.seq.0 as usize, day.entries.len());
    for entry in &day.entries {
        let payload = Payload::from_cbor(&entry.payload).unwrap();
        assert_eq!(payload.to_cbor(), entry.payload, "payload bytes are canonical");
    }
}
