//! The register's rules as pure code: given the register's state, a command and the time,
//! what to journal and what the state becomes — or why the command is refused. No I/O:
//! the journal supplies what a command references, the caller supplies `now`.

use chrono::{DateTime, FixedOffset, TimeDelta};
use protocol::receipt::format_local;
use protocol::{
    Document, DocumentBody, DocumentError, DocumentKind, DocumentNumber, Event, EventCode, Item, Money, Payload,
    ShiftNumber, ShiftReport, SignedMoney, Summary, Tenders, cash_effect,
};

use crate::config::RulesConfig;

/// What the register is now: everything a decision needs that is not in the command.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterState {
    /// The number the next document gets.
    pub next_number: DocumentNumber,
    /// The number the next shift gets.
    pub next_shift: ShiftNumber,
    /// The open shift, if any.
    pub open_shift: Option<OpenShift>,
    /// The cash in the drawer.
    pub drawer: SignedMoney,
    /// The cumulative total after the last closed shift.
    pub cumulative_total: Money,
    /// Why the register is blocked, if it is.
    pub blocked: Option<Block>,
    /// A block the server ordered (a directive), until it orders the unblock.
    pub server_block: Option<String>,
    /// Whether event 1021 (ТСОК expired) has been journaled.
    pub tsok_expiry_recorded: bool,
}

/// The open shift.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenShift {
    /// Its number.
    pub number: ShiftNumber,
    /// When it was opened.
    pub opened_at: DateTime<FixedOffset>,
    /// Its documents so far, summed (the shift report is made from this).
    pub summary: Summary,
}

/// Why and since when the register is blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Why, for the cashier.
    pub reason: String,
    /// Since when.
    pub since: DateTime<FixedOffset>,
}

/// What the POS app asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Open a shift.
    OpenShift {
        /// Who.
        cashier: String,
    },
    /// Close the open shift, making its report.
    CloseShift {
        /// Who.
        cashier: String,
    },
    /// Make a document.
    Document {
        /// Who.
        cashier: String,
        /// What.
        request: DocumentRequest,
    },
}

/// A document the POS app asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentRequest {
    /// A sale.
    Payment {
        /// The lines.
        items: Vec<Item>,
        /// How it is paid.
        tenders: Tenders,
    },
    /// Goods returned.
    Return {
        /// The payment they were bought with, when known.
        ref_number: Option<DocumentNumber>,
        /// The lines.
        items: Vec<Item>,
        /// How the money is paid back.
        tenders: Tenders,
    },
    /// The cancellation of a payment of the open shift.
    Annulment {
        /// The payment.
        ref_number: DocumentNumber,
    },
    /// Cash into the drawer.
    CashIn {
        /// How much.
        amount: Money,
    },
    /// Cash out of the drawer.
    CashOut {
        /// How much.
        amount: Money,
    },
    /// Cash paid out of the drawer.
    Payout {
        /// How much.
        amount: Money,
    },
}

impl DocumentRequest {
    /// The document it references, if any: the journal looks it up for the decision.
    pub fn reference(&self) -> Option<DocumentNumber> {
        match self {
            DocumentRequest::Return { ref_number, .. } => *ref_number,
            DocumentRequest::Annulment { ref_number } => Some(*ref_number),
            _ => None,
        }
    }
}

/// What the journal knows of a referenced document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referenced {
    /// Its kind.
    pub kind: DocumentKind,
    /// Its shift.
    pub shift: ShiftNumber,
    /// Its tenders (for payments).
    pub tenders: Tenders,
    /// Whether it has been annulled.
    pub annulled: bool,
    /// How much has been returned against it so far.
    pub returned: Money,
}

/// Why a command is refused. Each maps to an HTTP status and a stable code (CONTRACTS §1);
/// the message is for the cashier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No shift is open.
    #[error("смена не открыта")]
    NoOpenShift,
    /// A shift is already open.
    #[error("смена {0} уже открыта")]
    ShiftAlreadyOpen(ShiftNumber),
    /// The open shift is over its length: only closing it is accepted.
    #[error("смена {shift} длится более {hours} часов: закройте смену")]
    ShiftExpired {
        /// The shift.
        shift: ShiftNumber,
        /// The limit.
        hours: u32,
    },
    /// The register is blocked.
    #[error("касса заблокирована: {0}")]
    Blocked(String),
    /// The document itself is wrong (sums, names, barcodes).
    #[error("{0}")]
    Invalid(DocumentError),
    /// The referenced document does not exist.
    #[error("документ N {0} не найден")]
    UnknownDocument(DocumentNumber),
    /// The referenced document is not a payment.
    #[error("документ N {0} не является платежным документом")]
    NotAPayment(DocumentNumber),
    /// The payment is already annulled.
    #[error("платежный документ N {0} уже аннулирован")]
    AlreadyAnnulled(DocumentNumber),
    /// Only payments of the open shift can be annulled.
    #[error("платежный документ N {0} не относится к открытой смене")]
    NotInOpenShift(DocumentNumber),
    /// A payment with returns against it cannot be annulled.
    #[error("по платежному документу N {0} уже был возврат: аннулирование невозможно")]
    AlreadyReturned(DocumentNumber),
    /// Returns against a payment would exceed it.
    #[error("возврат превышает платежный документ N {number}: можно вернуть не более {available}")]
    ReturnExceedsPayment {
        /// The payment.
        number: DocumentNumber,
        /// What is left to return.
        available: Money,
    },
    /// More cash would leave the drawer than it holds.
    #[error("в кассе недостаточно наличных: {drawer}, требуется {needed}")]
    NotEnoughCash {
        /// The cash in the drawer.
        drawer: SignedMoney,
        /// The cash the document takes out.
        needed: Money,
    },
}

impl Refusal {
    /// The HTTP status CONTRACTS §1 gives it.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoOpenShift | Refusal::ShiftAlreadyOpen(_) | Refusal::ShiftExpired { .. } => 409,
            Refusal::Blocked(_) => 423,
            _ => 422,
        }
    }

    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoOpenShift => "no_open_shift",
            Refusal::ShiftAlreadyOpen(_) => "shift_already_open",
            Refusal::ShiftExpired { .. } => "shift_expired",
            Refusal::Blocked(_) => "blocked",
            Refusal::Invalid(DocumentError::TendersMismatch { .. }) => "sums_mismatch",
            Refusal::Invalid(DocumentError::ZeroTotal | DocumentError::TooLarge(_)) => "invalid_amount",
            Refusal::Invalid(_) => "invalid_document",
            Refusal::UnknownDocument(_) => "unknown_document",
            Refusal::NotAPayment(_) => "not_a_payment",
            Refusal::AlreadyAnnulled(_) => "already_annulled",
            Refusal::NotInOpenShift(_) => "not_in_open_shift",
            Refusal::AlreadyReturned(_) => "already_returned",
            Refusal::ReturnExceedsPayment { .. } => "return_exceeds_payment",
            Refusal::NotEnoughCash { .. } => "not_enough_cash",
        }
    }
}

/// What to journal, in order, and the state after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The payloads to append to the journal.
    pub payloads: Vec<Payload>,
    /// The state once they are journaled.
    pub state: RegisterState,
}

/// Decides `command` at `now`. `referenced` is what the journal knows of the document the
/// command references (`None` if it references none, or the journal has no such document).
pub fn decide(
    state: &RegisterState,
    rules: &RulesConfig,
    command: &Command,
    referenced: Option<&Referenced>,
    now: DateTime<FixedOffset>,
) -> Result<Decision, Refusal> {
    let mut next = state.clone();
    match command {
        Command::OpenShift { cashier } => {
            refuse_if_blocked(state)?;
            if let Some(open) = &state.open_shift {
                return Err(Refusal::ShiftAlreadyOpen(open.number));
            }
            check_cashier(cashier)?;
            let number = state.next_shift;
            next.open_shift = Some(OpenShift { number, opened_at: now, summary: Summary::default() });
            next.next_shift = number.next();
            Ok(Decision { payloads: vec![event(EventCode::ShiftOpened, now, Some(number.to_string()))], state: next })
        }
        Command::CloseShift { cashier } => {
            // Closing is allowed while blocked and after the shift's time is over.
            let open = state.open_shift.as_ref().ok_or(Refusal::NoOpenShift)?;
            check_cashier(cashier)?;
            let report = ShiftReport::new(open.opened_at, &open.summary, state.cumulative_total);
            next.cumulative_total = report.cumulative_total;
            next.open_shift = None;
            let document = Document {
                number: DocumentNumber(open.number.0.into()),
                shift: open.number,
                created_at: now,
                cashier: cashier.clone(),
                body: DocumentBody::ShiftReport(report),
            };
            let closed = event(EventCode::ShiftClosed, now, Some(open.number.to_string()));
            Ok(Decision { payloads: vec![Payload::Document(document), closed], state: next })
        }
        Command::Document { cashier, request } => {
            refuse_if_blocked(state)?;
            let open = state.open_shift.as_ref().ok_or(Refusal::NoOpenShift)?;
            if now - open.opened_at > TimeDelta::hours(rules.max_shift_hours.into()) {
                return Err(Refusal::ShiftExpired { shift: open.number, hours: rules.max_shift_hours });
            }
            let body = document_body(request, open.number, referenced)?;
            let document = Document {
                number: state.next_number,
                shift: open.number,
                created_at: now,
                cashier: cashier.clone(),
                body,
            };
            document.check().map_err(Refusal::Invalid)?;

            let drawer = state.drawer + cash_effect(&document.body);
            if drawer.is_negative() {
                let needed = (-cash_effect(&document.body)).to_money().unwrap_or(Money::ZERO);
                return Err(Refusal::NotEnoughCash { drawer: state.drawer, needed });
            }
            next.drawer = drawer;
            next.next_number = state.next_number.next();
            let open_next = next.open_shift.as_mut().expect("the shift is open");
            open_next.summary.add_body(&document.body);
            Ok(Decision { payloads: vec![Payload::Document(document)], state: next })
        }
    }
}

fn refuse_if_blocked(state: &RegisterState) -> Result<(), Refusal> {
    match &state.blocked {
        Some(block) => Err(Refusal::Blocked(block.reason.clone())),
        None => Ok(()),
    }
}

fn check_cashier(cashier: &str) -> Result<(), Refusal> {
    if protocol::document::valid_text(cashier) { Ok(()) } else { Err(Refusal::Invalid(DocumentError::Cashier)) }
}

/// The body of a requested document, checked against what it references.
fn document_body(
    request: &DocumentRequest,
    open_shift: ShiftNumber,
    referenced: Option<&Referenced>,
) -> Result<DocumentBody, Refusal> {
    let payment = |number: DocumentNumber| -> Result<&Referenced, Refusal> {
        let found = referenced.ok_or(Refusal::UnknownDocument(number))?;
        if found.kind != DocumentKind::Payment {
            return Err(Refusal::NotAPayment(number));
        }
        if found.annulled {
            return Err(Refusal::AlreadyAnnulled(number));
        }
        Ok(found)
    };
    Ok(match request {
        DocumentRequest::Payment { items, tenders } => {
            DocumentBody::Payment { items: items.clone(), tenders: *tenders }
        }
        DocumentRequest::Return { ref_number, items, tenders } => {
            if let Some(number) = *ref_number {
                let paid = payment(number)?;
                let available = paid.tenders.total().checked_sub(paid.returned).unwrap_or(Money::ZERO);
                let asked = protocol::document::items_total(items);
                if asked > available {
                    return Err(Refusal::ReturnExceedsPayment { number, available });
                }
            }
            DocumentBody::Return { ref_number: *ref_number, items: items.clone(), tenders: *tenders }
        }
        DocumentRequest::Annulment { ref_number } => {
            let paid = payment(*ref_number)?;
            if paid.shift != open_shift {
                return Err(Refusal::NotInOpenShift(*ref_number));
            }
            if !paid.returned.is_zero() {
                return Err(Refusal::AlreadyReturned(*ref_number));
            }
            DocumentBody::Annulment { ref_number: *ref_number, tenders: paid.tenders }
        }
        DocumentRequest::CashIn { amount } => DocumentBody::CashIn { amount: *amount },
        DocumentRequest::CashOut { amount } => DocumentBody::CashOut { amount: *amount },
        DocumentRequest::Payout { amount } => DocumentBody::Payout { amount: *amount },
    })
}

/// An event payload.
pub fn event(code: EventCode, at: DateTime<FixedOffset>, parameter: Option<String>) -> Payload {
    Payload::Event(Event { code, created_at: at, parameter })
}

/// What the register knows, apart from its state, when it checks whether to block.
#[derive(Clone, Copy, Debug)]
pub struct Surroundings {
    /// When the ТСОК expires.
    pub tsok_expires_at: Option<DateTime<FixedOffset>>,
    /// When the oldest undelivered entry was recorded.
    pub oldest_pending_at: Option<DateTime<FixedOffset>>,
}

/// Checks the blocking rules at `now`: journals 1021 when the ТСОК expires, 1020 when the
/// register becomes blocked and 1022 when every cause is gone. Returns `None` when nothing
/// changes.
pub fn review_blocking(
    state: &RegisterState,
    rules: &RulesConfig,
    around: &Surroundings,
    now: DateTime<FixedOffset>,
) -> Option<Decision> {
    let mut next = state.clone();
    let mut payloads = Vec::new();
    let tsok_expired = around.tsok_expires_at.filter(|&at| now >= at);
    if let Some(at) = tsok_expired
        && !state.tsok_expiry_recorded
    {
        payloads.push(event(EventCode::TsokExpired, now, Some(format_local(&at))));
        next.tsok_expiry_recorded = true;
    }
    let limit = TimeDelta::days(rules.max_undelivered_days.into());
    let reason = if let Some(at) = tsok_expired {
        Some(format!("истек срок действия ТСОК ({})", format_local(&at)))
    } else if let Some(oldest) = around.oldest_pending_at.filter(|&t| now - t > limit) {
        Some(format!(
            "данные не переданы на сервер более {} дней (самая старая запись от {})",
            rules.max_undelivered_days,
            format_local(&oldest)
        ))
    } else {
        state.server_block.as_ref().map(|reason| format!("по указанию сервера: {reason}"))
    };
    match (&state.blocked, reason) {
        (None, Some(reason)) => {
            payloads.push(event(EventCode::Blocked, now, Some(reason.clone())));
            next.blocked = Some(Block { reason, since: now });
        }
        (Some(block), None) => {
            payloads.push(event(EventCode::Unblocked, now, Some(format!("устранено: {}", block.reason))));
            next.blocked = None;
        }
        (Some(block), Some(reason)) if block.reason != reason => {
            next.blocked = Some(Block { reason, since: block.since });
        }
        _ => {}
    }
    (next != *state).then_some(Decision { payloads, state: next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn m(text: &str) -> Money {
        text.parse().unwrap()
    }

    const RULES: RulesConfig = RulesConfig { max_shift_hours: 24, max_undelivered_days: 30 };

    fn fresh() -> RegisterState {
        RegisterState {
            next_number: DocumentNumber(100),
            next_shift: ShiftNumber(7),
            open_shift: None,
            drawer: SignedMoney::ZERO,
            cumulative_total: m("1000.00"),
            blocked: None,
            server_block: None,
            tsok_expiry_recorded: false,
        }
    }

    fn cmd(request: DocumentRequest) -> Command {
        Command::Document { cashier: "Иванов".into(), request }
    }

    fn open(state: &RegisterState, now: &str) -> RegisterState {
        decide(state, &RULES, &Command::OpenShift { cashier: "Иванов".into() }, None, at(now)).unwrap().state
    }

    fn item(price: &str) -> Item {
        Item { name: "Товар".into(), gtin: None, section: 1, price: m(price), quantity: protocol::Quantity::ONE }
    }

    fn pay(price: &str) -> DocumentRequest {
        DocumentRequest::Payment { items: vec![item(price)], tenders: Tenders::cash(m(price)) }
    }

    const T0: &str = "2024-10-11T09:00:00+03:00";

    #[test]
    fn documents_need_an_open_shift_and_a_shift_opens_once() {
        let s = fresh();
        assert_eq!(decide(&s, &RULES, &cmd(pay("1.00")), None, at(T0)), Err(Refusal::NoOpenShift));
        let s = open(&s, T0);
        assert_eq!(s.next_shift, ShiftNumber(8));
        let again = decide(&s, &RULES, &Command::OpenShift { cashier: "Петров".into() }, None, at(T0));
        assert_eq!(again, Err(Refusal::ShiftAlreadyOpen(ShiftNumber(7))));
        assert_eq!(again.unwrap_err().status(), 409);
    }

    #[test]
    fn numbers_increase_by_one_and_the_report_takes_the_shift_number() {
        let mut s = open(&fresh(), T0);
        for expected in 100..103 {
            let d = decide(&s, &RULES, &cmd(pay("2.50")), None, at(T0)).unwrap();
            let Payload::Document(doc) = &d.payloads[0] else { panic!() };
            assert_eq!(doc.number, DocumentNumber(expected));
            s = d.state;
        }
        let closed = decide(&s, &RULES, &Command::CloseShift { cashier: "Иванов".into() }, None, at(T0)).unwrap();
        let Payload::Document(report) = &closed.payloads[0] else { panic!() };
        assert_eq!(report.number, DocumentNumber(7));
        let DocumentBody::ShiftReport(r) = &report.body else { panic!() };
        assert_eq!(r.counts.payment, 3);
        assert_eq!(r.cumulative_total, m("1007.50"));
        assert_eq!(closed.state.cumulative_total, m("1007.50"));
        assert_eq!(closed.state.next_number, DocumentNumber(103), "a report takes no document number");
        assert!(
            matches!(&closed.payloads[1], Payload::Event(e) if e.code == EventCode::ShiftClosed && e.parameter.as_deref() == Some("7"))
        );
    }

    #[test]
    fn a_shift_over_its_length_accepts_only_its_closing() {
        let s = open(&fresh(), T0);
        let late = at("2024-10-12T09:00:01+03:00");
        assert_eq!(
            decide(&s, &RULES, &cmd(pay("1.00")), None, late),
            Err(Refusal::ShiftExpired { shift: ShiftNumber(7), hours: 24 })
        );
        assert!(decide(&s, &RULES, &cmd(pay("1.00")), None, at("2024-10-12T09:00:00+03:00")).is_ok());
        assert!(decide(&s, &RULES, &Command::CloseShift { cashier: "Иванов".into() }, None, late).is_ok());
    }

    #[test]
    fn cash_never_leaves_more_than_the_drawer_holds() {
        let s = open(&fresh(), T0);
        let s = decide(&s, &RULES, &cmd(DocumentRequest::CashIn { amount: m("10.00") }), None, at(T0)).unwrap().state;
        let refused = decide(&s, &RULES, &cmd(DocumentRequest::CashOut { amount: m("10.01") }), None, at(T0));
        assert_eq!(refused, Err(Refusal::NotEnoughCash { drawer: "10.00".parse().unwrap(), needed: m("10.01") }));
        assert_eq!(refused.unwrap_err().status(), 422);
        let payout = decide(&s, &RULES, &cmd(DocumentRequest::Payout { amount: m("10.00") }), None, at(T0)).unwrap();
        assert_eq!(payout.state.drawer, SignedMoney::ZERO);
    }

    fn paid(shift: u32, total: &str) -> Referenced {
        Referenced {
            kind: DocumentKind::Payment,
            shift: ShiftNumber(shift),
            tenders: Tenders { card: m(total), ..Tenders::ZERO },
            annulled: false,
            returned: Money::ZERO,
        }
    }

    #[test]
    fn annulment_takes_the_payments_tenders_and_only_in_its_shift() {
        let s = open(&fresh(), T0);
        let annul = cmd(DocumentRequest::Annulment { ref_number: DocumentNumber(50) });
        let d = decide(&s, &RULES, &annul, Some(&paid(7, "4.79")), at(T0)).unwrap();
        let Payload::Document(doc) = &d.payloads[0] else { panic!() };
        assert_eq!(doc.figures().tenders, Some(Tenders { card: m("4.79"), ..Tenders::ZERO }));

        let cases = [
            (None, Refusal::UnknownDocument(DocumentNumber(50))),
            (Some(paid(6, "4.79")), Refusal::NotInOpenShift(DocumentNumber(50))),
            (Some(Referenced { annulled: true, ..paid(7, "4.79") }), Refusal::AlreadyAnnulled(DocumentNumber(50))),
            (Some(Referenced { returned: m("1.00"), ..paid(7, "4.79") }), Refusal::AlreadyReturned(DocumentNumber(50))),
            (
                Some(Referenced { kind: DocumentKind::CashIn, ..paid(7, "4.79") }),
                Refusal::NotAPayment(DocumentNumber(50)),
            ),
        ];
        for (referenced, refusal) in cases {
            assert_eq!(decide(&s, &RULES, &annul, referenced.as_ref(), at(T0)), Err(refusal));
        }
    }

    #[test]
    fn returns_never_exceed_their_payment() {
        let s = open(&fresh(), T0);
        let s = decide(&s, &RULES, &cmd(DocumentRequest::CashIn { amount: m("100.00") }), None, at(T0)).unwrap().state;
        let ret = |price: &str| {
            cmd(DocumentRequest::Return {
                ref_number: Some(DocumentNumber(50)),
                items: vec![item(price)],
                tenders: Tenders::cash(m(price)),
            })
        };
        let payment = Referenced { returned: m("3.00"), ..paid(2, "10.00") };
        assert!(decide(&s, &RULES, &ret("7.00"), Some(&payment), at(T0)).is_ok(), "any shift, up to what is left");
        assert_eq!(
            decide(&s, &RULES, &ret("7.01"), Some(&payment), at(T0)),
            Err(Refusal::ReturnExceedsPayment { number: DocumentNumber(50), available: m("7.00") })
        );
    }

    #[test]
    fn sums_that_do_not_add_up_are_refused_with_422() {
        let s = open(&fresh(), T0);
        let bad = cmd(DocumentRequest::Payment { items: vec![item("4.79")], tenders: Tenders::cash(m("4.80")) });
        let refusal = decide(&s, &RULES, &bad, None, at(T0)).unwrap_err();
        assert_eq!((refusal.status(), refusal.code()), (422, "sums_mismatch"));
    }

    #[test]
    fn blocking_follows_its_causes_and_allows_closing() {
        let s = open(&fresh(), T0);
        let around = Surroundings {
            tsok_expires_at: Some(at("2024-10-11T12:00:00+03:00")),
            oldest_pending_at: Some(at("2024-10-11T08:00:00+03:00")),
        };
        assert_eq!(review_blocking(&s, &RULES, &around, at(T0)), None);

        let expired = review_blocking(&s, &RULES, &around, at("2024-10-11T12:00:00+03:00")).unwrap();
        let codes: Vec<_> = expired
            .payloads
            .iter()
            .map(|p| match p {
                Payload::Event(e) => e.code,
                _ => panic!(),
            })
            .collect();
        assert_eq!(codes, [EventCode::TsokExpired, EventCode::Blocked]);
        let s = expired.state;
        assert!(s.blocked.as_ref().unwrap().reason.contains("ТСОК"));
        assert_eq!(
            review_blocking(&s, &RULES, &around, at("2024-10-11T13:00:00+03:00")),
            None,
            "events are recorded once"
        );
        assert_eq!(decide(&s, &RULES, &cmd(pay("1.00")), None, at(T0)).unwrap_err().status(), 423);
        assert!(decide(&s, &RULES, &Command::CloseShift { cashier: "Иванов".into() }, None, at(T0)).is_ok());

        let renewed = Surroundings { tsok_expires_at: Some(at("2027-01-01T00:00:00+03:00")), ..around };
        let unblocked = review_blocking(&s, &RULES, &renewed, at("2024-10-11T14:00:00+03:00")).unwrap();
        assert!(matches!(&unblocked.payloads[..], [Payload::Event(e)] if e.code == EventCode::Unblocked));
        assert_eq!(unblocked.state.blocked, None);
    }

    #[test]
    fn undelivered_entries_older_than_the_limit_block() {
        let s = fresh();
        let around = Surroundings { tsok_expires_at: None, oldest_pending_at: Some(at("2024-09-01T00:00:00+03:00")) };
        assert_eq!(review_blocking(&s, &RULES, &around, at("2024-10-01T00:00:00+03:00")), None);
        let blocked = review_blocking(&s, &RULES, &around, at("2024-10-01T00:00:01+03:00")).unwrap();
        assert!(blocked.state.blocked.unwrap().reason.contains("более 30 дней"));
    }

    #[test]
    fn a_server_block_lasts_until_the_server_lifts_it() {
        let s = RegisterState { server_block: Some("решение оператора".into()), ..fresh() };
        let none = Surroundings { tsok_expires_at: None, oldest_pending_at: None };
        let blocked = review_blocking(&s, &RULES, &none, at(T0)).unwrap().state;
        assert!(blocked.blocked.as_ref().unwrap().reason.contains("решение оператора"));
        let lifted = RegisterState { server_block: None, ..blocked };
        assert_eq!(review_blocking(&lifted, &RULES, &none, at(T0)).unwrap().state.blocked, None);
    }
}
