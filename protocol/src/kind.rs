//! The kinds of documents and the codes of events, with the labels the portal shows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The seven kinds of documents a register makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A sale.
    Payment,
    /// Money paid back for goods returned.
    Return,
    /// The cancellation of a payment of the open shift.
    Annulment,
    /// Cash put into the drawer.
    CashIn,
    /// Cash taken out of the drawer.
    CashOut,
    /// Cash paid out of the drawer.
    Payout,
    /// The shift (Z-) report, made when the shift closes.
    ShiftReport,
}

impl DocumentKind {
    /// Every kind, in the order the portal's check-boxes and summary columns use.
    pub const ALL: [DocumentKind; 7] = [
        DocumentKind::ShiftReport,
        DocumentKind::Payment,
        DocumentKind::Return,
        DocumentKind::Annulment,
        DocumentKind::CashIn,
        DocumentKind::CashOut,
        DocumentKind::Payout,
    ];

    /// The name on the wire and in URLs (`payment`, `cash_in`).
    pub fn wire_name(self) -> &'static str {
        match self {
            DocumentKind::Payment => "payment",
            DocumentKind::Return => "return",
            DocumentKind::Annulment => "annulment",
            DocumentKind::CashIn => "cash_in",
            DocumentKind::CashOut => "cash_out",
            DocumentKind::Payout => "payout",
            DocumentKind::ShiftReport => "shift_report",
        }
    }

    /// The Russian label the portal shows (`Платежный документ`).
    pub fn label(self) -> &'static str {
        match self {
            DocumentKind::Payment => "Платежный документ",
            DocumentKind::Return => "Возврат",
            DocumentKind::Annulment => "Аннулирование",
            DocumentKind::CashIn => "Внесение",
            DocumentKind::CashOut => "Изъятие",
            DocumentKind::Payout => "Выдача",
            DocumentKind::ShiftReport => "Сменный отчет",
        }
    }

    /// Whether documents of this kind are paid in tenders (cash, card, other); the cash
    /// kinds (`cash_in`, `cash_out`, `payout`) carry one cash amount instead.
    pub fn has_tenders(self) -> bool {
        !matches!(self, DocumentKind::CashIn | DocumentKind::CashOut | DocumentKind::Payout)
    }

    /// A dense index (0..7) for tables keyed by kind.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// The text is not one of the seven kinds' wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("неизвестный тип документа «{0}»")]
pub struct UnknownKind(pub String);

impl FromStr for DocumentKind {
    type Err = UnknownKind;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL.into_iter().find(|k| k.wire_name() == text).ok_or_else(|| UnknownKind(text.to_owned()))
    }
}

/// An event's code. Codes this version does not know are kept as [`EventCode::Unknown`]
/// and shown as `Код N`, never refused: a newer agent must not be cut off by an older server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventCode {
    /// 26: the shift was opened (parameter: its number).
    ShiftOpened,
    /// 27: the shift was closed (parameter: its number).
    ShiftClosed,
    /// 1010: the agent started.
    PowerOn,
    /// 1011: the agent stopped cleanly.
    PowerOff,
    /// 1020: the register was blocked (parameter: the reason).
    Blocked,
    /// 1021: the ТСОК expired (parameter: the expiry time).
    TsokExpired,
    /// 1022: the register was unblocked (parameter: the reason).
    Unblocked,
    /// A code this version does not know.
    Unknown(u32),
}

impl EventCode {
    /// Every known code, in the order the portal's check-boxes use.
    pub const KNOWN: [EventCode; 7] = [
        EventCode::Blocked,
        EventCode::TsokExpired,
        EventCode::Unblocked,
        EventCode::ShiftOpened,
        EventCode::PowerOn,
        EventCode::ShiftClosed,
        EventCode::PowerOff,
    ];

    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            EventCode::ShiftOpened => 26,
            EventCode::ShiftClosed => 27,
            EventCode::PowerOn => 1010,
            EventCode::PowerOff => 1011,
            EventCode::Blocked => 1020,
            EventCode::TsokExpired => 1021,
            EventCode::Unblocked => 1022,
            EventCode::Unknown(n) => n,
        }
    }

    /// The code for a number; unknown numbers are kept as they are.
    pub fn from_code(code: u32) -> EventCode {
        EventCode::KNOWN.into_iter().find(|e| e.code() == code).unwrap_or(EventCode::Unknown(code))
    }

    /// The Russian label the portal shows (`Открытие смены`, or `Код 77` for an unknown code).
    pub fn label(self) -> String {
        match self {
            EventCode::ShiftOpened => "Открытие смены".into(),
            EventCode::ShiftClosed => "Закрытие смены".into(),
            EventCode::PowerOn => "Включение".into(),
            EventCode::PowerOff => "Выключение".into(),
            EventCode::Blocked => "Блокировка кассового оборудования".into(),
            EventCode::TsokExpired => "Время завершения действия ТСОК".into(),
            EventCode::Unblocked => "Разблокировка кассового оборудования".into(),
            EventCode::Unknown(n) => format!("Код {n}"),
        }
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.code(), f)
    }
}

impl Serialize for EventCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for EventCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u32::deserialize(deserializer).map(EventCode::from_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_wire_names_and_labels() {
        for kind in DocumentKind::ALL {
            assert_eq!(kind.wire_name().parse::<DocumentKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.wire_name()));
        }
        assert_eq!(DocumentKind::Payment.label(), "Платежный документ");
        assert_eq!(DocumentKind::ShiftReport.label(), "Сменный отчет");
        assert!(matches!("sale".parse::<DocumentKind>(), Err(UnknownKind(_))));
        let indexes: std::collections::BTreeSet<_> = DocumentKind::ALL.iter().map(|k| k.index()).collect();
        assert_eq!(indexes.len(), 7);
        assert!(indexes.iter().all(|&i| i < 7));
    }

    #[test]
    fn event_codes_round_trip_including_unknown_ones() {
        for code in [26, 27, 1010, 1011, 1020, 1021, 1022, 77, 0, u32::MAX] {
            let event = EventCode::from_code(code);
            assert_eq!(event.code(), code);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, code.to_string());
            assert_eq!(serde_json::from_str::<EventCode>(&json).unwrap(), event);
        }
        assert_eq!(EventCode::from_code(77), EventCode::Unknown(77));
        assert_eq!(EventCode::from_code(77).label(), "Код 77");
        assert_eq!(EventCode::from_code(1010).label(), "Включение");
        assert_eq!(EventCode::from_code(26).label(), "Открытие смены");
    }
}
