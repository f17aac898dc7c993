//! The arithmetic, defined once: the summary table, the shift report, the cumulative total
//! and the cash in the drawer. The agent, the server and the tests all call these.

use std::ops::{Add, AddAssign};

use chrono::{DateTime, FixedOffset};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::document::{DocumentBody, Figures, ShiftReport};
use crate::ids::ShiftNumber;
use crate::kind::DocumentKind;
use crate::money::{Money, SignedMoney, SignedTenders, Tenders};

/// One value per kind of document a shift makes (every kind but the shift report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerKind<T> {
    /// Платежный документ.
    pub payment: T,
    /// Возврат.
    #[serde(rename = "return")]
    pub return_: T,
    /// Аннулирование.
    pub annulment: T,
    /// Внесение.
    pub cash_in: T,
    /// Изъятие.
    pub cash_out: T,
    /// Выдача.
    pub payout: T,
}

impl<T> PerKind<T> {
    /// The value for `kind`; `None` for the shift report, which is not counted per shift.
    pub fn get(&self, kind: DocumentKind) -> Option<&T> {
        match kind {
            DocumentKind::Payment => Some(&self.payment),
            DocumentKind::Return => Some(&self.return_),
            DocumentKind::Annulment => Some(&self.annulment),
            DocumentKind::CashIn => Some(&self.cash_in),
            DocumentKind::CashOut => Some(&self.cash_out),
            DocumentKind::Payout => Some(&self.payout),
            DocumentKind::ShiftReport => None,
        }
    }

    /// Builds one from a function of the kind.
    pub fn from_fn(mut f: impl FnMut(DocumentKind) -> T) -> PerKind<T> {
        PerKind {
            payment: f(DocumentKind::Payment),
            return_: f(DocumentKind::Return),
            annulment: f(DocumentKind::Annulment),
            cash_in: f(DocumentKind::CashIn),
            cash_out: f(DocumentKind::CashOut),
            payout: f(DocumentKind::Payout),
        }
    }
}

/// The figures of one kind in a summary: how many documents and their sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotals {
    /// How many documents.
    pub count: u64,
    /// Their tenders (zero for the cash kinds, which have none).
    pub tenders: Tenders,
    /// Their total (for the cash kinds, the sum of their amounts).
    pub total: Money,
}

impl KindTotals {
    fn count(&mut self, figures: &Figures) {
        self.count += 1;
        self.total += figures.total;
        if let Some(tenders) = figures.tenders {
            self.tenders += tenders;
        }
    }
}

impl Add for KindTotals {
    type Output = KindTotals;
    fn add(self, rhs: KindTotals) -> KindTotals {
        KindTotals { count: self.count + rhs.count, tenders: self.tenders + rhs.tenders, total: self.total + rhs.total }
    }
}

/// Where a document stands with the server, as far as the summary cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Counted: delivered (or not yet sent, on the register).
    Counted,
    /// Refused by the server ("Ошибка"): listed, but counted in no total.
    Refused,
}

/// The summary table under a document list: per kind, the count and tender sums; and
/// Выручка = payments − returns − annulments per tender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    kinds: [KindTotals; 7],
}

impl Summary {
    /// Counts one document, unless the server refused it.
    pub fn add(&mut self, kind: DocumentKind, figures: &Figures, standing: Standing) {
        if standing == Standing::Counted {
            self.kinds[kind.index()].count(figures);
        }
    }

    /// Counts one journaled document body.
    pub fn add_body(&mut self, body: &DocumentBody) {
        self.add(body.kind(), &body.figures(), Standing::Counted);
    }

    /// The figures of one kind.
    pub fn kind(&self, kind: DocumentKind) -> &KindTotals {
        &self.kinds[kind.index()]
    }

    /// Every kind's figures, by [`DocumentKind`] declaration order: for storing a running
    /// summary (the agent's open shift) and reading it back with [`Summary::from_kinds`].
    pub fn kinds(&self) -> &[KindTotals; 7] {
        &self.kinds
    }

    /// The summary with these figures per kind (as [`Summary::kinds`] gave them).
    pub fn from_kinds(kinds: [KindTotals; 7]) -> Summary {
        Summary { kinds }
    }

    /// Выручка per tender: payments − returns − annulments. Its total is, by construction,
    /// the sum of its three rows.
    pub fn revenue(&self) -> SignedTenders {
        let tenders = |kind| SignedTenders::from(self.kind(kind).tenders);
        tenders(DocumentKind::Payment) - tenders(DocumentKind::Return) - tenders(DocumentKind::Annulment)
    }
}

impl Add for Summary {
    type Output = Summary;
    fn add(self, rhs: Summary) -> Summary {
        let mut kinds = self.kinds;
        for (sum, other) in kinds.iter_mut().zip(rhs.kinds) {
            *sum = *sum + other;
        }
        Summary { kinds }
    }
}

impl AddAssign for Summary {
    fn add_assign(&mut self, rhs: Summary) {
        *self = *self + rhs;
    }
}

/// CONTRACTS §3's shape: `{"revenue": {total, cash, card, other}, "kinds": {kind: {count,
/// total[, cash, card, other]}}}`; the cash kinds carry no tender fields.
impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Revenue {
            total: SignedMoney,
            cash: SignedMoney,
            card: SignedMoney,
            other: SignedMoney,
        }
        #[derive(Serialize)]
        struct Kind {
            count: u64,
            total: Money,
            #[serde(skip_serializing_if = "Option::is_none")]
            cash: Option<Money>,
            #[serde(skip_serializing_if = "Option::is_none")]
            card: Option<Money>,
            #[serde(skip_serializing_if = "Option::is_none")]
            other: Option<Money>,
        }
        struct Kinds<'a>(&'a Summary);
        impl Serialize for Kinds<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(DocumentKind::ALL.len()))?;
                for kind in DocumentKind::ALL {
                    let t = self.0.kind(kind);
                    let tender = |m: Money| kind.has_tenders().then_some(m);
                    let value = Kind {
                        count: t.count,
                        total: t.total,
                        cash: tender(t.tenders.cash),
                        card: tender(t.tenders.card),
                        other: tender(t.tenders.other),
                    };
                    map.serialize_entry(kind.wire_name(), &value)?;
                }
                map.end()
            }
        }
        let revenue = self.revenue();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(
            "revenue",
            &Revenue { total: revenue.total(), cash: revenue.cash, card: revenue.card, other: revenue.other },
        )?;
        map.serialize_entry("kinds", &Kinds(self))?;
        map.end()
    }
}

/// The register's cumulative total after a shift: the previous one plus the shift's gross
/// payments.
pub fn cumulative_after(previous: Money, shift_payments: Money) -> Money {
    previous + shift_payments
}

impl ShiftReport {
    /// The report of a shift opened at `opened_at` whose documents (the report aside) sum to
    /// `shift`, on a register whose cumulative total before the shift was `previous_cumulative`.
    pub fn new(opened_at: DateTime<FixedOffset>, shift: &Summary, previous_cumulative: Money) -> ShiftReport {
        let payments = shift.kind(DocumentKind::Payment);
        ShiftReport {
            opened_at,
            counts: PerKind::from_fn(|k| shift.kind(k).count),
            totals: PerKind::from_fn(|k| shift.kind(k).total),
            tenders: payments.tenders,
            revenue: shift.revenue(),
            cumulative_total: cumulative_after(previous_cumulative, payments.total),
        }
    }
}

/// How a document changes the cash in the drawer: + cash in and the cash of payments;
/// − cash out, payouts, and the cash of returns and annulments.
pub fn cash_effect(body: &DocumentBody) -> SignedMoney {
    match body {
        DocumentBody::CashIn { amount } => (*amount).into(),
        DocumentBody::CashOut { amount } | DocumentBody::Payout { amount } => -SignedMoney::from(*amount),
        DocumentBody::Payment { tenders, .. } => tenders.cash.into(),
        DocumentBody::Return { tenders, .. } | DocumentBody::Annulment { tenders, .. } => {
            -SignedMoney::from(tenders.cash)
        }
        DocumentBody::ShiftReport(_) => SignedMoney::ZERO,
    }
}

/// The cash in the drawer after `bodies`, starting from `start`.
pub fn drawer_cash<'a>(start: SignedMoney, bodies: impl IntoIterator<Item = &'a DocumentBody>) -> SignedMoney {
    bodies.into_iter().map(cash_effect).fold(start, Add::add)
}

/// One shift's line on the cumulative-total page, as the server knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CumulativeLine {
    /// The shift.
    pub shift: ShiftNumber,
    /// The cumulative total its report states.
    pub reported: Money,
    /// The sum of the payment documents of that shift the server holds.
    pub payments: Money,
}

/// For each line (in shift order), whether its cumulative total equals the previous line's
/// plus the shift's payments. The first line has no previous one to check against unless
/// `baseline` (the register's starting total) is known.
pub fn check_cumulative(lines: &[CumulativeLine], baseline: Option<Money>) -> Vec<bool> {
    let mut previous = baseline;
    lines
        .iter()
        .map(|line| {
            let consistent = previous.is_none_or(|p| cumulative_after(p, line.payments) == line.reported);
            previous = Some(line.reported);
            consistent
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn cumulative_check_flags_the_shift_that_does_not_add_up() {
        let line = |shift, reported: &str, payments: &str| CumulativeLine {
            shift: ShiftNumber(shift),
            reported: m(reported),
            payments: m(payments),
        };
        let lines = [line(70, "50674.17", "17.68"), line(71, "93706.95", "14.37"), line(72, "93710.95", "4.00")];
        assert_eq!(check_cumulative(&lines, None), [true, false, true]);
        assert_eq!(check_cumulative(&lines, Some(m("50656.49"))), [true, false, true]);
        assert_eq!(check_cumulative(&lines, Some(m("0.00"))), [false, false, true]);
    }

    #[test]
    fn drawer_cash_follows_each_kind() {
        let cash = |s: &str| Tenders::cash(m(s));
        let bodies = [
            DocumentBody::CashIn { amount: m("50.00") },
            DocumentBody::Payment { items: vec![], tenders: cash("4.79") },
            DocumentBody::Payout { amount: m("25.00") },
            DocumentBody::Annulment { ref_number: crate::DocumentNumber(1), tenders: cash("4.79") },
            DocumentBody::Return { ref_number: None, items: vec![], tenders: cash("1.00") },
            DocumentBody::CashOut { amount: m("20.00") },
            DocumentBody::Payment { items: vec![], tenders: Tenders { card: m("9.99"), ..Tenders::ZERO } },
        ];
        assert_eq!(drawer_cash(SignedMoney::ZERO, &bodies).to_string(), "4.00");
        assert_eq!(drawer_cash("10".parse().unwrap(), &bodies[..1]).to_string(), "60.00");
    }
}
