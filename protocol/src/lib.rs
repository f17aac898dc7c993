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

pub mod chain;
pub mod document;
pub mod ids;
pub mod kind;
pub mod money;
pub mod receipt;
pub mod summary;
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
pub use wire::{Answer, Batch, DeviceInfo, Directive, EntryResult, EntryStatus, Refusal, WireError};
