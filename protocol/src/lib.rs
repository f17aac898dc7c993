//! The shared language of the agent and the cabinet server.
//!
//! Pure code: no I/O, no async runtime, and it never reads the clock (every time is a
//! parameter). The main types:
//!
//! - identifiers valid by construction: [`Unp`], [`RegNumber`], [`Serial`],
//!   [`DocumentNumber`], [`ShiftNumber`], [`Seq`], [`Uid`];
//! - exact money: [`Money`], [`SignedMoney`], [`Quantity`], [`Tenders`];
//! - what a register journals: [`Document`] (with its [`DocumentBody`] per [`DocumentKind`]),
//!   [`Event`] (with its [`EventCode`]), wrapped in a [`Payload`];
//! - the hash chain: [`ChainHash`], [`Entry`], [`ChainHead`], [`verify_chain`];
//! - the wire format of CONTRACTS §2 in [`wire`]: [`Batch`], [`Answer`], [`Refusal`];
//! - the printed form in [`receipt`]: [`receipt_text`];
//! - the arithmetic in [`summary`]: [`Summary`], [`ShiftReport::new`], [`cash_effect`],
//!   [`cumulative_after`], [`check_cumulative`].
#![deny(missing_docs)]

/// Serde for types that travel as their `Display` text and parse back with `FromStr`
/// (money, identifiers): one implementation for all of them.
macro_rules! serde_as_string {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

pub mod chain;
pub mod document;
pub mod ids;
pub mod kind;
pub mod money;
pub mod receipt;
pub mod summary;
pub mod view;
pub mod wire;

pub use chain::{ChainError, ChainFault, ChainHash, ChainHead, Entry, Uid, verify_chain};
pub use document::{Document, DocumentBody, DocumentError, Event, Figures, Item, Payload, ShiftReport};
pub use ids::{DocumentNumber, IdError, RegNumber, Seq, Serial, ShiftNumber, Unp};
pub use kind::{DocumentKind, EventCode};
pub use money::{AmountError, Money, Quantity, SignedMoney, SignedTenders, Tenders, line_sum};
pub use receipt::{ReceiptHeader, receipt_text};
pub use summary::{
    CumulativeLine, KindTotals, PerKind, Standing, Summary, cash_effect, check_cumulative, cumulative_after,
    drawer_cash,
};
pub use view::DocumentView;
pub use wire::{Answer, Batch, DeviceInfo, Directive, EntryResult, EntryStatus, Refusal, WireError};
