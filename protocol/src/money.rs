//! Money and quantities: exact decimals, never floats.
//!
//! [`Money`] is a non-negative amount of BYN with exactly two fractional digits: every
//! price, tender, document total and running total. [`SignedMoney`] is the same with a sign,
//! for figures that can go below zero (Выручка of a period with more returns than sales,
//! a difference). [`Quantity`] has exactly three fractional digits and is never zero.
//! All three travel as decimal strings (`"4.79"`, `"1.000"`) in JSON and CBOR alike.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Kopecks per ruble: money has this many fractional digits.
const MONEY_SCALE: u32 = 2;
/// A quantity has this many fractional digits (grams of a kilogram, say).
const QUANTITY_SCALE: u32 = 3;
/// The most integer digits accepted in a parsed amount: far above any real sum.
const MAX_MONEY_DIGITS: usize = 15;
/// The most integer digits of a quantity. With [`MAX_MONEY_DIGITS`] this bounds a line's
/// sum at 10²¹ and any document's at far below `Decimal`'s 7.9·10²⁸: no arithmetic on
/// parsed values can overflow (and panic).
const MAX_QUANTITY_DIGITS: usize = 6;

/// Why a decimal string is not an amount or a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was given.
    #[error("сумма не указана")]
    Empty,
    /// The text is not a plain decimal number (`"abc"`, `"1e3"`, `"1,5"`).
    #[error("«{0}» — не число: ожидается запись вида 4.79")]
    NotANumber(String),
    /// A minus sign where only non-negative values make sense.
    #[error("«{0}»: значение не может быть отрицательным")]
    Negative(String),
    /// More fractional digits than the type keeps (`"4.789"` as money).
    #[error("«{value}»: допускается не более {max} знаков после точки")]
    TooPrecise {
        /// The text that was given.
        value: String,
        /// The number of fractional digits allowed.
        max: u32,
    },
    /// More integer digits than any real amount has.
    #[error("«{0}»: слишком большое значение")]
    TooLarge(String),
    /// A zero quantity: nothing was sold.
    #[error("количество должно быть больше нуля")]
    ZeroQuantity,
}

/// Parses a plain decimal string: optional `-`, digits, optional `.` and digits. No
/// exponent, no spaces, no `+`, no thousands separators.
fn parse_decimal(text: &str, max_scale: u32, max_digits: usize, allow_negative: bool) -> Result<Decimal, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let not_a_number = || AmountError::NotANumber(text.to_owned());
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
        return Err(not_a_number());
    }
    if negative && !allow_negative {
        return Err(AmountError::Negative(text.to_owned()));
    }
    let frac_digits = frac_part.map_or(0, str::len);
    if frac_digits > max_scale as usize {
        return Err(AmountError::TooPrecise { value: text.to_owned(), max: max_scale });
    }
    if int_part.trim_start_matches('0').len() > max_digits {
        return Err(AmountError::TooLarge(text.to_owned()));
    }
    let mut value = Decimal::from_str_exact(text).map_err(|_| not_a_number())?;
    value.rescale(max_scale);
    if value.is_zero() {
        // "-0.00" is zero; keep one representation of it.
        value.set_sign_positive(true);
    }
    Ok(value)
}

/// A non-negative amount of money with exactly two fractional digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Default for Money {
    /// Zero, shown as `0.00`.
    fn default() -> Money {
        Money::ZERO
    }
}

impl Money {
    /// Zero rubles.
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, MONEY_SCALE));

    /// Whole kopecks as money (`479` → `4.79`).
    pub fn from_kopecks(kopecks: u64) -> Money {
        Money(Decimal::new(kopecks as i64, MONEY_SCALE))
    }

    /// The amount as a plain decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The difference, which may be negative.
    pub fn minus(self, other: Money) -> SignedMoney {
        SignedMoney::from(self) - SignedMoney::from(other)
    }

    /// `self - other` when it is not negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        (self >= other).then(|| Money(self.0 - other.0))
    }

    /// The amount with thousands grouped by spaces, as the portal shows it (`50 027.08`).
    pub fn grouped(self) -> String {
        group_thousands(&self.to_string())
    }
}

impl FromStr for Money {
    type Err = AmountError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_decimal(text, MONEY_SCALE, MAX_MONEY_DIGITS, false).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({})", self.0)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// An amount of money that may be negative, with exactly two fractional digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedMoney(Decimal);

impl Default for SignedMoney {
    /// Zero, shown as `0.00`.
    fn default() -> SignedMoney {
        SignedMoney::ZERO
    }
}

impl SignedMoney {
    /// Zero rubles.
    pub const ZERO: SignedMoney = SignedMoney(Decimal::from_parts(0, 0, 0, false, MONEY_SCALE));

    /// The amount as a plain decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// The amount as [`Money`] when it is not negative.
    pub fn to_money(self) -> Option<Money> {
        (!self.0.is_sign_negative() || self.0.is_zero()).then_some(Money(self.0.abs()))
    }

    /// Whether this is below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The amount with thousands grouped by spaces (`-1 204.50`).
    pub fn grouped(self) -> String {
        group_thousands(&self.to_string())
    }
}

impl From<Money> for SignedMoney {
    fn from(money: Money) -> SignedMoney {
        SignedMoney(money.0)
    }
}

impl FromStr for SignedMoney {
    type Err = AmountError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_decimal(text, MONEY_SCALE, MAX_MONEY_DIGITS, true).map(SignedMoney)
    }
}

impl fmt::Display for SignedMoney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0.00");
        }
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SignedMoney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedMoney({self})")
    }
}

impl Add for SignedMoney {
    type Output = SignedMoney;
    fn add(self, rhs: SignedMoney) -> SignedMoney {
        SignedMoney::normalized(self.0 + rhs.0)
    }
}

impl AddAssign for SignedMoney {
    fn add_assign(&mut self, rhs: SignedMoney) {
        *self = *self + rhs;
    }
}

impl Sub for SignedMoney {
    type Output = SignedMoney;
    fn sub(self, rhs: SignedMoney) -> SignedMoney {
        SignedMoney::normalized(self.0 - rhs.0)
    }
}

impl Neg for SignedMoney {
    type Output = SignedMoney;
    fn neg(self) -> SignedMoney {
        SignedMoney::normalized(-self.0)
    }
}

impl Sum for SignedMoney {
    fn sum<I: Iterator<Item = SignedMoney>>(iter: I) -> SignedMoney {
        iter.fold(SignedMoney::ZERO, Add::add)
    }
}

impl SignedMoney {
    fn normalized(mut value: Decimal) -> SignedMoney {
        if value.is_zero() {
            value.set_sign_positive(true);
        }
        SignedMoney(value)
    }
}

/// A quantity of goods with exactly three fractional digits, always above zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(Decimal);

impl Quantity {
    /// One piece.
    pub const ONE: Quantity = Quantity(Decimal::from_parts(1000, 0, 0, false, QUANTITY_SCALE));

    /// Thousandths as a quantity (`1500` → `1.500`); `None` for zero.
    pub fn from_thousandths(thousandths: u64) -> Option<Quantity> {
        (thousandths > 0).then(|| Quantity(Decimal::new(thousandths as i64, QUANTITY_SCALE)))
    }

    /// The quantity as a plain decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl FromStr for Quantity {
    type Err = AmountError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = parse_decimal(text, QUANTITY_SCALE, MAX_QUANTITY_DIGITS, false)?;
        if value.is_zero() {
            return Err(AmountError::ZeroQuantity);
        }
        Ok(Quantity(value))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({})", self.0)
    }
}

/// The sum of an item line: price × quantity, rounded half-up to kopecks.
pub fn line_sum(price: Money, quantity: Quantity) -> Money {
    let exact = price.0 * quantity.0;
    let mut rounded = exact.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(MONEY_SCALE);
    Money(rounded)
}

/// Inserts a space between each group of three integer digits: `1234567.80` → `1 234 567.80`.
fn group_thousands(plain: &str) -> String {
    let (sign, unsigned) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut out = String::with_capacity(plain.len() + int_part.len() / 3);
    out.push_str(sign);
    for (i, digit) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    out
}

serde_as_string!(Money, SignedMoney, Quantity);

/// How a document was paid (or paid back): cash, card and other means.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tenders {
    /// Наличными.
    pub cash: Money,
    /// Безналичными (картой).
    pub card: Money,
    /// Иными (прочее).
    pub other: Money,
}

impl Tenders {
    /// Nothing paid.
    pub const ZERO: Tenders = Tenders { cash: Money::ZERO, card: Money::ZERO, other: Money::ZERO };

    /// Everything in cash.
    pub fn cash(amount: Money) -> Tenders {
        Tenders { cash: amount, ..Tenders::ZERO }
    }

    /// The sum of the three tenders.
    pub fn total(&self) -> Money {
        self.cash + self.card + self.other
    }
}

impl Add for Tenders {
    type Output = Tenders;
    fn add(self, rhs: Tenders) -> Tenders {
        Tenders { cash: self.cash + rhs.cash, card: self.card + rhs.card, other: self.other + rhs.other }
    }
}

impl AddAssign for Tenders {
    fn add_assign(&mut self, rhs: Tenders) {
        *self = *self + rhs;
    }
}

/// Tenders that may be negative: Выручка per tender.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedTenders {
    /// Наличными.
    pub cash: SignedMoney,
    /// Безналичными (картой).
    pub card: SignedMoney,
    /// Иными (прочее).
    pub other: SignedMoney,
}

impl SignedTenders {
    /// The sum of the three tenders.
    pub fn total(&self) -> SignedMoney {
        self.cash + self.card + self.other
    }
}

impl From<Tenders> for SignedTenders {
    fn from(t: Tenders) -> SignedTenders {
        SignedTenders { cash: t.cash.into(), card: t.card.into(), other: t.other.into() }
    }
}

impl Add for SignedTenders {
    type Output = SignedTenders;
    fn add(self, rhs: SignedTenders) -> SignedTenders {
        SignedTenders { cash: self.cash + rhs.cash, card: self.card + rhs.card, other: self.other + rhs.other }
    }
}

impl Sub for SignedTenders {
    type Output = SignedTenders;
    fn sub(self, rhs: SignedTenders) -> SignedTenders {
        SignedTenders { cash: self.cash - rhs.cash, card: self.card - rhs.card, other: self.other - rhs.other }
    }
}

impl AddAssign for SignedTenders {
    fn add_assign(&mut self, rhs: SignedTenders) {
        *self = *self + rhs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn money_parses_plain_decimals_and_always_shows_two_digits() {
        for (input, shown) in [("4.79", "4.79"), ("5", "5.00"), ("0.5", "0.50"), ("0", "0.00"), ("007.10", "7.10")] {
            assert_eq!(money(input).to_string(), shown, "{input}");
        }
    }

    #[test]
    fn money_refuses_what_is_not_an_amount() {
        type IsExpected = fn(&AmountError) -> bool;
        let cases: [(&str, IsExpected); 10] = [
            ("4.789", |e| matches!(e, AmountError::TooPrecise { max: 2, .. })),
            ("-1", |e| matches!(e, AmountError::Negative(_))),
            ("-0.01", |e| matches!(e, AmountError::Negative(_))),
            ("1e3", |e| matches!(e, AmountError::NotANumber(_))),
            ("abc", |e| matches!(e, AmountError::NotANumber(_))),
            ("", |e| matches!(e, AmountError::Empty)),
            ("1,50", |e| matches!(e, AmountError::NotANumber(_))),
            (" 1.50", |e| matches!(e, AmountError::NotANumber(_))),
            ("1.", |e| matches!(e, AmountError::NotANumber(_))),
            ("1234567890123456", |e| matches!(e, AmountError::TooLarge(_))),
        ];
        for (input, expected) in cases {
            let err = input.parse::<Money>().unwrap_err();
            assert!(expected(&err), "{input:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
        assert!(".5".parse::<Money>().is_err());
        assert!("+1".parse::<Money>().is_err());
    }

    #[test]
    fn signed_money_accepts_a_sign_and_has_one_zero() {
        let v: SignedMoney = "-12.5".parse().unwrap();
        assert_eq!(v.to_string(), "-12.50");
        assert!(v.is_negative());
        assert_eq!("-0".parse::<SignedMoney>().unwrap().to_string(), "0.00");
        assert_eq!((money("1.00").minus(money("1.00"))).to_string(), "0.00");
        assert_eq!(money("1.00").minus(money("3.50")).to_string(), "-2.50");
        assert_eq!(v.to_money(), None);
        assert_eq!(SignedMoney::from(money("2.00")).to_money(), Some(money("2.00")));
    }

    #[test]
    fn quantity_keeps_three_digits_and_is_never_zero() {
        assert_eq!("1".parse::<Quantity>().unwrap().to_string(), "1.000");
        assert_eq!("0.25".parse::<Quantity>().unwrap().to_string(), "0.250");
        assert_eq!("0.000".parse::<Quantity>(), Err(AmountError::ZeroQuantity));
        assert!(matches!("1.0001".parse::<Quantity>(), Err(AmountError::TooPrecise { max: 3, .. })));
        assert!(matches!("-1".parse::<Quantity>(), Err(AmountError::Negative(_))));
        assert!(matches!("1000000".parse::<Quantity>(), Err(AmountError::TooLarge(_))));
        assert_eq!("999999.999".parse::<Quantity>().unwrap().to_string(), "999999.999");
    }

    #[test]
    fn line_sum_rounds_half_up_to_kopecks() {
        let cases = [
            ("4.79", "1.000", "4.79"),
            ("1.99", "0.250", "0.50"), // 0.4975 → 0.50
            ("0.10", "0.125", "0.01"), // 0.0125 → 0.01
            ("0.10", "0.155", "0.02"), // 0.0155 → 0.02 (half-up)
            ("0.30", "0.005", "0.00"), // 0.0015 → 0.00
            ("0.50", "0.005", "0.00"), // 0.0025 → 0.00
            ("0.90", "0.005", "0.00"), // 0.0045 → 0.00
            ("3.00", "0.005", "0.02"), // 0.015 → 0.02
            ("2.37", "3.000", "7.11"),
        ];
        for (price, qty, sum) in cases {
            let got = line_sum(money(price), qty.parse().unwrap());
            assert_eq!(got.to_string(), sum, "{price} × {qty}");
        }
    }

    #[test]
    fn default_money_is_zero_with_two_digits() {
        assert_eq!(Money::default().to_string(), "0.00");
        assert_eq!(SignedMoney::default().to_string(), "0.00");
        assert_eq!(Tenders::default().total().to_string(), "0.00");
    }

    #[test]
    fn the_largest_line_does_not_overflow() {
        let sum = line_sum(money("999999999999999.99"), "999999.999".parse().unwrap());
        // (10¹⁵ − 0.01)(10⁶ − 0.001) = 10²¹ − 10¹² − 10⁴ + 10⁻⁵
        assert_eq!(sum.to_string(), "999999998999999990000.00");
    }

    #[test]
    fn grouping_matches_the_portal() {
        assert_eq!(money("50027.08").grouped(), "50 027.08");
        assert_eq!(money("93706.95").grouped(), "93 706.95");
        assert_eq!(money("876.40").grouped(), "876.40");
        assert_eq!(money("1234567.00").grouped(), "1 234 567.00");
        assert_eq!(money("0").grouped(), "0.00");
        assert_eq!("-1204.5".parse::<SignedMoney>().unwrap().grouped(), "-1 204.50");
    }

    #[test]
    fn tenders_total_and_signed_difference() {
        let t = Tenders { cash: money("9.58"), card: money("2.79"), other: money("2.00") };
        assert_eq!(t.total(), money("14.37"));
        let back = SignedTenders::from(Tenders::cash(money("9.58")));
        let revenue = SignedTenders::from(t) - back;
        assert_eq!(revenue.total().to_string(), "4.79");
        assert_eq!(revenue.cash.to_string(), "0.00");
    }
}
