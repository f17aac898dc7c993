//! The printed text of every kind of document, one line each, as the manual shows it.

use std::fmt::Write;

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use crate::chain::Uid;
use crate::document::{Document, DocumentBody, Item, ShiftReport};
use crate::ids::{RegNumber, Unp};
use crate::kind::DocumentKind;
use crate::money::{Money, SignedTenders, Tenders};

/// Who the receipt is from: the first two lines of every document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptHeader {
    /// The legal entity's full name.
    pub org_name: String,
    /// Its taxpayer number.
    pub unp: Unp,
    /// The register's РН СККО.
    pub reg_number: RegNumber,
}

/// The first line of every document that is not a payment document.
const NOT_A_PAYMENT: &str = "НЕ ЯВЛЯЕТСЯ ПЛАТЕЖНЫМ ДОКУМЕНТОМ";

/// A time as printed: `11.10.2024 15:04:50`, in the time zone the time carries.
pub fn format_local(time: &DateTime<FixedOffset>) -> String {
    // Written out rather than through `format("%d.%m.%Y …")`: lists format thousands of these.
    format!(
        "{:02}.{:02}.{:04} {:02}:{:02}:{:02}",
        time.day(),
        time.month(),
        time.year(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// The receipt of `document`, whose UID is `uid`.
pub fn receipt_text(header: &ReceiptHeader, document: &Document, uid: &Uid) -> String {
    let mut r = Receipt(String::with_capacity(512));
    r.line(&header.org_name);
    r.line(format_args!("УНП {} РН СККО {}", header.unp, header.reg_number));
    match &document.body {
        DocumentBody::Payment { items, tenders } => {
            r.line("ПЛАТЕЖНЫЙ ДОКУМЕНТ");
            r.line(format_args!("N док. {}", document.number));
            r.items(items);
            r.line(format_args!("ИТОГО {}", tenders.total()));
            r.line(format_args!("ИТОГО К ОПЛАТЕ {}", tenders.total()));
            r.tenders(tenders);
        }
        DocumentBody::Return { ref_number, items, tenders } => {
            r.line("ВОЗВРАТ");
            r.line(format_args!("N док. {}", document.number));
            if let Some(reference) = ref_number {
                r.line(format_args!("К ПЛАТЕЖНОМУ ДОКУМЕНТУ N {reference}"));
            }
            r.items(items);
            r.line(format_args!("ИТОГО {}", tenders.total()));
            r.line(format_args!("ИТОГО К ВЫПЛАТЕ {}", tenders.total()));
            r.tenders(tenders);
        }
        DocumentBody::Annulment { ref_number, tenders } => {
            r.line("АННУЛИРОВАНИЕ");
            r.line(format_args!("N док. {}", document.number));
            r.line(format_args!("АННУЛИРОВАН ПЛАТЕЖНЫЙ ДОКУМЕНТ N {ref_number}"));
            r.line(format_args!("ИТОГО {}", tenders.total()));
            r.tenders(tenders);
        }
        DocumentBody::CashIn { amount } => r.cash_document("ДОКУМЕНТ ВНЕСЕНИЯ", document, *amount),
        DocumentBody::CashOut { amount } => r.cash_document("ДОКУМЕНТ ИЗЪЯТИЯ", document, *amount),
        DocumentBody::Payout { amount } => r.cash_document("ДОКУМЕНТ ВЫДАЧИ", document, *amount),
        DocumentBody::ShiftReport(report) => r.shift_report(document, report),
    }
    r.line(format_args!("Кассир {} {}", document.cashier, format_local(&document.created_at)));
    r.0.push_str("УИ ");
    r.0.push_str(uid.as_str());
    r.0
}

struct Receipt(String);

impl Receipt {
    fn line(&mut self, text: impl std::fmt::Display) {
        writeln!(self.0, "{text}").expect("writing to a String cannot fail");
    }

    fn items(&mut self, items: &[Item]) {
        for item in items {
            self.line(&item.name);
            if let Some(gtin) = &item.gtin {
                self.line(gtin);
            }
            self.line(format_args!("{} Секция {} *{} ={}", item.section, item.price, item.quantity, item.sum()));
        }
    }

    /// The tender lines, each only when non-zero.
    fn tenders(&mut self, tenders: &Tenders) {
        for (label, amount) in [("НАЛИЧНЫМИ", tenders.cash), ("БЕЗНАЛИЧНЫМИ", tenders.card), ("ИНЫМИ", tenders.other)]
        {
            if !amount.is_zero() {
                self.line(format_args!("{label} {amount}"));
            }
        }
    }

    fn cash_document(&mut self, title: &str, document: &Document, amount: Money) {
        self.line(NOT_A_PAYMENT);
        self.line(title);
        self.line(format_args!("N док. {}", document.number));
        self.line(format_args!("СУММА {amount}"));
    }

    fn shift_report(&mut self, document: &Document, report: &ShiftReport) {
        self.line(NOT_A_PAYMENT);
        self.line("СМЕННЫЙ ОТЧЕТ");
        self.line(format_args!("Смена N {}", document.shift));
        self.line(format_args!("Открыта {}", format_local(&report.opened_at)));
        for kind in DocumentKind::ALL {
            let (Some(count), Some(total)) = (report.counts.get(kind), report.totals.get(kind)) else {
                continue;
            };
            self.line(format_args!("{}: {count} на сумму {total}", kind.label()));
            if kind == DocumentKind::Payment {
                self.tenders(&report.tenders);
            }
        }
        let SignedTenders { cash, card, other } = report.revenue;
        self.line(format_args!("ВЫРУЧКА {}", report.revenue.total()));
        self.line(format_args!("НАЛИЧНЫМИ {cash}"));
        self.line(format_args!("БЕЗНАЛИЧНЫМИ {card}"));
        self.line(format_args!("ИНЫМИ {other}"));
        self.line(format_args!("НАКОПИТЕЛЬНЫЙ ИТОГ {}", report.cumulative_total));
    }
}
