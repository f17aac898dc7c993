//! Documents and events: the payloads a register journals, chains and sends.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::ids::{DocumentNumber, ShiftNumber};
use crate::kind::{DocumentKind, EventCode};
use crate::money::{Money, Quantity, SignedTenders, Tenders, line_sum};
use crate::summary::PerKind;

/// The longest cashier name, item name or event parameter accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 128;

/// The largest total a document may have: a trillion rubles, beyond any real sale.
pub fn max_document_total() -> Money {
    "1000000000000.00".parse().expect("a valid amount")
}

/// One line of a payment or a return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What was sold, as printed.
    pub name: String,
    /// The barcode (GTIN), when the goods have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    /// The section (department) number.
    pub section: u32,
    /// The price of one unit.
    pub price: Money,
    /// How many units.
    pub quantity: Quantity,
}

impl Item {
    /// The line's sum: price × quantity, rounded half-up to kopecks.
    pub fn sum(&self) -> Money {
        line_sum(self.price, self.quantity)
    }
}

/// The sum of the lines of `items`.
pub fn items_total(items: &[Item]) -> Money {
    items.iter().map(Item::sum).sum()
}

/// What a shift report states about its shift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftReport {
    /// When the shift was opened.
    pub opened_at: DateTime<FixedOffset>,
    /// How many documents of each kind the shift made.
    pub counts: PerKind<u64>,
    /// The total of each kind's documents.
    pub totals: PerKind<Money>,
    /// The shift's gross payments per tender (annulled payments included).
    pub tenders: Tenders,
    /// Выручка per tender: payments − returns − annulments.
    pub revenue: SignedTenders,
    /// The register's non-resettable grand total after this shift.
    pub cumulative_total: Money,
}

/// What kind of document it is, with what only that kind carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DocumentBody {
    /// A sale.
    Payment {
        /// The lines sold.
        items: Vec<Item>,
        /// How it was paid; sums to the items' total.
        tenders: Tenders,
    },
    /// Goods returned and money paid back (in any tenders).
    Return {
        /// The payment the goods were bought with, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ref_number: Option<DocumentNumber>,
        /// The lines returned.
        items: Vec<Item>,
        /// How the money was paid back; sums to the items' total.
        tenders: Tenders,
    },
    /// The cancellation of a payment of the open shift.
    Annulment {
        /// The annulled payment.
        ref_number: DocumentNumber,
        /// The annulled payment's tenders.
        tenders: Tenders,
    },
    /// Cash put into the drawer.
    CashIn {
        /// How much.
        amount: Money,
    },
    /// Cash taken out of the drawer.
    CashOut {
        /// How much.
        amount: Money,
    },
    /// Cash paid out of the drawer.
    Payout {
        /// How much.
        amount: Money,
    },
    /// The shift report made when the shift closes.
    ShiftReport(ShiftReport),
}

/// A document as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// "N док.": the register's document number; for a shift report, its shift's number.
    pub number: DocumentNumber,
    /// The shift the document belongs to.
    pub shift: ShiftNumber,
    /// When the register made it, in the register's time zone.
    pub created_at: DateTime<FixedOffset>,
    /// Who made it.
    pub cashier: String,
    /// The kind and what it carries.
    #[serde(flatten)]
    pub body: DocumentBody,
}

/// The money a document moves, as the document list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    /// The tenders, for kinds that have them; `None` for the cash kinds.
    pub tenders: Option<Tenders>,
    /// Сумма общая.
    pub total: Money,
}

/// Why a well-formed document cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The cashier's name is empty or too long.
    #[error("не указан кассир или имя длиннее {MAX_TEXT_CHARS} символов")]
    Cashier,
    /// A payment or return with no lines.
    #[error("в документе нет ни одной позиции")]
    NoItems,
    /// An item's name is empty or too long.
    #[error("позиция {line}: пустое или слишком длинное наименование")]
    ItemName {
        /// The line, from 1.
        line: usize,
    },
    /// An item's GTIN is not 8 to 14 digits.
    #[error("позиция {line}: штрихкод должен состоять из 8–14 цифр")]
    Gtin {
        /// The line, from 1.
        line: usize,
    },
    /// The tenders do not add up to the items' total.
    #[error("сумма оплат {tenders} не равна сумме позиций {items}")]
    TendersMismatch {
        /// The tenders' sum.
        tenders: Money,
        /// The items' total.
        items: Money,
    },
    /// A document for nothing.
    #[error("сумма документа должна быть больше нуля")]
    ZeroTotal,
    /// A document for more than any real sale.
    #[error("сумма документа {0} превышает допустимую")]
    TooLarge(Money),
    /// A shift report whose payment tenders differ from its payments total.
    #[error("сменный отчет противоречив: оплаты {tenders} при сумме платежных документов {payments}")]
    ReportMismatch {
        /// The report's tenders sum.
        tenders: Money,
        /// The report's payments total.
        payments: Money,
    },
}

/// Whether `text` is a usable name: not blank, not too long.
pub fn valid_text(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= MAX_TEXT_CHARS
}

/// A single amount (a cash document, an annulment) must be above zero and within the limit.
fn check_amount(amount: Money) -> Result<(), DocumentError> {
    if amount.is_zero() {
        Err(DocumentError::ZeroTotal)
    } else if amount > max_document_total() {
        Err(DocumentError::TooLarge(amount))
    } else {
        Ok(())
    }
}

fn check_items(items: &[Item], tenders: &Tenders) -> Result<(), DocumentError> {
    if items.is_empty() {
        return Err(DocumentError::NoItems);
    }
    for (i, item) in items.iter().enumerate() {
        let line = i + 1;
        if !valid_text(&item.name) {
            return Err(DocumentError::ItemName { line });
        }
        if let Some(gtin) = &item.gtin
            && (!(8..=14).contains(&gtin.len()) || !gtin.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DocumentError::Gtin { line });
        }
    }
    let total = items_total(items);
    if total > max_document_total() {
        return Err(DocumentError::TooLarge(total));
    }
    if total != tenders.total() {
        return Err(DocumentError::TendersMismatch { tenders: tenders.total(), items: total });
    }
    if total.is_zero() {
        return Err(DocumentError::ZeroTotal);
    }
    Ok(())
}

impl Document {
    /// The document's kind.
    pub fn kind(&self) -> DocumentKind {
        self.body.kind()
    }

    /// The money it moves, as listed.
    pub fn figures(&self) -> Figures {
        self.body.figures()
    }

    /// Checks what the types cannot: names, barcodes, that the sums add up. Documents the
    /// agent makes always pass; the server checks what it receives and stores a failure as
    /// `rejected` with this reason.
    pub fn check(&self) -> Result<(), DocumentError> {
        if !valid_text(&self.cashier) {
            return Err(DocumentError::Cashier);
        }
        match &self.body {
            DocumentBody::Payment { items, tenders } | DocumentBody::Return { items, tenders, .. } => {
                check_items(items, tenders)
            }
            DocumentBody::Annulment { tenders, .. } => check_amount(tenders.total()),
            DocumentBody::CashIn { amount } | DocumentBody::CashOut { amount } | DocumentBody::Payout { amount } => {
                check_amount(*amount)
            }
            DocumentBody::ShiftReport(report) => {
                let payments = report.totals.payment;
                if report.tenders.total() != payments {
                    return Err(DocumentError::ReportMismatch { tenders: report.tenders.total(), payments });
                }
                Ok(())
            }
        }
    }
}

impl DocumentBody {
    /// The kind of this body.
    pub fn kind(&self) -> DocumentKind {
        match self {
            DocumentBody::Payment { .. } => DocumentKind::Payment,
            DocumentBody::Return { .. } => DocumentKind::Return,
            DocumentBody::Annulment { .. } => DocumentKind::Annulment,
            DocumentBody::CashIn { .. } => DocumentKind::CashIn,
            DocumentBody::CashOut { .. } => DocumentKind::CashOut,
            DocumentBody::Payout { .. } => DocumentKind::Payout,
            DocumentBody::ShiftReport(_) => DocumentKind::ShiftReport,
        }
    }

    /// The money it moves, as listed.
    pub fn figures(&self) -> Figures {
        let tendered = |tenders: &Tenders| Figures { tenders: Some(*tenders), total: tenders.total() };
        match self {
            DocumentBody::Payment { tenders, .. }
            | DocumentBody::Return { tenders, .. }
            | DocumentBody::Annulment { tenders, .. } => tendered(tenders),
            DocumentBody::ShiftReport(report) => tendered(&report.tenders),
            DocumentBody::CashIn { amount } | DocumentBody::CashOut { amount } | DocumentBody::Payout { amount } => {
                Figures { tenders: None, total: *amount }
            }
        }
    }
}

/// An event as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub code: EventCode,
    /// When the register recorded it, in the register's time zone.
    pub created_at: DateTime<FixedOffset>,
    /// The shift number, the reason or the time the code calls for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// One journal entry's content: a document or an event. Its CBOR bytes are what the
/// chain hashes and what travels to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "documents are the common case; boxing them would cost an allocation each"
)]
pub enum Payload {
    /// A document.
    Document(Document),
    /// An event.
    Event(Event),
}

impl Payload {
    /// The payload's canonical CBOR bytes, as journaled and hashed.
    pub fn to_cbor(&self) -> Vec<u8> {
        crate::wire::encode(self)
    }

    /// Reads a payload from its CBOR bytes.
    pub fn from_cbor(bytes: &[u8]) -> Result<Payload, crate::wire::WireError> {
        crate::wire::decode(bytes, crate::wire::MAX_PAYLOAD_BYTES)
    }

    /// When it was recorded.
    pub fn created_at(&self) -> DateTime<FixedOffset> {
        match self {
            Payload::Document(d) => d.created_at,
            Payload::Event(e) => e.created_at,
        }
    }
}
