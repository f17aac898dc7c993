//! What the POS API answers: documents and status as JSON (CONTRACTS §1). Built from the
//! journal's domain types; nothing here is stored.

use chrono::{DateTime, FixedOffset};
use protocol::ShiftNumber;
use serde::Serialize;

/// The answer to opening a shift.
#[derive(Serialize)]
pub struct ShiftOpened {
    /// The shift's number.
    pub shift: ShiftNumber,
    /// When it opened.
    pub opened_at: DateTime<FixedOffset>,
}
