//! The JSON view of a document, shared by the agent's POS API and the cabinet's API.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::{
    Document, DocumentBody, DocumentKind, DocumentNumber, Item, Money, PerKind, ReceiptHeader, ShiftNumber,
    SignedTenders, Tenders, Uid, receipt_text,
};

/// A document as JSON: the POS API's answer (CONTRACTS §1) and the merchant API's
/// `GET /api/v1/documents/{uid}` (§3), one shape for both.
#[derive(Serialize)]
pub struct DocumentView<'a> {
    kind: DocumentKind,
    number: DocumentNumber,
    uid: &'a Uid,
    shift: ShiftNumber,
    created_at: DateTime<FixedOffset>,
    cashier: &'a str,
    items: Vec<ItemView<'a>>,
    /// `null` for the cash kinds, which carry `amount` instead.
    tenders: Option<Tenders>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<Money>,
    total: Money,
    ref_number: Option<DocumentNumber>,
    receipt: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    report: Option<ReportView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_error: Option<&'a str>,
}

#[derive(Serialize)]
struct ItemView<'a> {
    name: &'a str,
    gtin: Option<&'a str>,
    section: u32,
    price: Money,
    quantity: crate::Quantity,
    sum: Money,
}

#[derive(Serialize)]
struct ReportView {
    opened_at: DateTime<FixedOffset>,
    counts: PerKind<u64>,
    totals: PerKind<Money>,
    revenue: SignedTenders,
    cumulative_total: Money,
}

impl<'a> DocumentView<'a> {
    /// The view of `document`, journaled with UID `uid`.
    pub fn new(header: &ReceiptHeader, document: &'a Document, uid: &'a Uid) -> DocumentView<'a> {
        let figures = document.figures();
        let (items, ref_number, amount): (&[Item], _, _) = match &document.body {
            DocumentBody::Payment { items, .. } => (items, None, None),
            DocumentBody::Return { items, ref_number, .. } => (items, *ref_number, None),
            DocumentBody::Annulment { ref_number, .. } => (&[], Some(*ref_number), None),
            DocumentBody::CashIn { amount } | DocumentBody::CashOut { amount } | DocumentBody::Payout { amount } => {
                (&[], None, Some(*amount))
            }
            DocumentBody::ShiftReport(_) => (&[], None, None),
        };
        let report = match &document.body {
            DocumentBody::ShiftReport(r) => Some(ReportView {
                opened_at: r.opened_at,
                counts: r.counts,
                totals: r.totals,
                revenue: r.revenue,
                cumulative_total: r.cumulative_total,
            }),
            _ => None,
        };
        DocumentView {
            kind: document.kind(),
            number: document.number,
            uid,
            shift: document.shift,
            created_at: document.created_at,
            cashier: &document.cashier,
            items: items
                .iter()
                .map(|i| ItemView {
                    name: &i.name,
                    gtin: i.gtin.as_deref(),
                    section: i.section,
                    price: i.price,
                    quantity: i.quantity,
                    sum: i.sum(),
                })
                .collect(),
            tenders: figures.tenders,
            amount,
            total: figures.total,
            ref_number,
            receipt: receipt_text(header, document, uid),
            report,
            delivery: None,
            delivery_error: None,
        }
    }

    /// Adds where the document stands with the server (`pending`, `delivered`, `rejected`,
    /// or the portal's `delivered` / `error`) and why it was refused.
    pub fn with_delivery(mut self, delivery: &'static str, error: Option<&'a str>) -> DocumentView<'a> {
        self.delivery = Some(delivery);
        self.delivery_error = error;
        self
    }
}
