//! Identifiers of taxpayers, registers, documents and shifts, each valid by construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A УНП must be exactly nine digits.
    #[error("УНП «{0}» должен состоять из 9 цифр")]
    UnpFormat(String),
    /// The ninth digit of a УНП does not match the others.
    #[error("УНП «{0}» недействителен: не сходится контрольная цифра")]
    UnpCheckDigit(String),
    /// A РН СККО must be exactly nine digits.
    #[error("РН СККО «{0}» должен состоять из 9 цифр")]
    RegNumber(String),
    /// A Номер СКО is latin capitals and digits, 1 to 32 of them.
    #[error("номер СКО «{0}» должен состоять из заглавных латинских букв и цифр (не более 32)")]
    Serial(String),
}

/// Weights of the first eight digits of a УНП in its check digit.
const UNP_WEIGHTS: [u32; 8] = [29, 23, 19, 17, 13, 7, 5, 3];

/// A taxpayer number (УНП): nine digits, the last a check digit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unp(u32);

impl Unp {
    /// The number as an integer (`100231650`).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Unp {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = nine_digits(text).ok_or_else(|| IdError::UnpFormat(text.to_owned()))?;
        let weighted: u32 = digits[..8].iter().zip(UNP_WEIGHTS).map(|(d, w)| d * w).sum();
        let check = weighted % 11;
        if check == 10 || check != digits[8] {
            return Err(IdError::UnpCheckDigit(text.to_owned()));
        }
        Ok(Unp(text.parse().expect("nine digits fit in u32")))
    }
}

/// The nine digits of `text`, or `None` if it is not exactly nine ASCII digits.
fn nine_digits(text: &str) -> Option<[u32; 9]> {
    let bytes: [u8; 9] = text.as_bytes().try_into().ok()?;
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.map(|b| u32::from(b - b'0')))
}

impl fmt::Display for Unp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

/// The registration number of a cash register in the control system (РН СККО): nine digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegNumber(u32);

impl RegNumber {
    /// The number as an integer (`119026501`).
    pub fn get(self) -> u32 {
        self.0
    }

    /// The eight upper-case hex digits that end every UID of this register
    /// (`119026501` → `07183345`).
    pub fn uid_suffix(self) -> String {
        format!("{:08X}", self.0)
    }
}

impl FromStr for RegNumber {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        nine_digits(text).ok_or_else(|| IdError::RegNumber(text.to_owned()))?;
        Ok(RegNumber(text.parse().expect("nine digits fit in u32")))
    }
}

impl fmt::Display for RegNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

/// The serial number of a software register instance (Номер СКО, `AVQ11169990740`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(String);

impl Serial {
    /// The serial as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Serial {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid =
            (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(IdError::Serial(text.to_owned()));
        }
        Ok(Serial(text.to_owned()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! debug_as_display {
    ($($ty:ident),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self)
            }
        }
    )*};
}

serde_as_string!(Unp, RegNumber, Serial);
debug_as_display!(Unp, RegNumber, Serial);

/// A document's number ("N док."): one per-register sequence over every kind but the shift
/// report, increasing by one, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentNumber(pub u64);

impl DocumentNumber {
    /// The number after this one.
    pub fn next(self) -> DocumentNumber {
        DocumentNumber(self.0 + 1)
    }
}

impl fmt::Display for DocumentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A shift's number, per register from 1; also the number of its shift report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShiftNumber(pub u32);

impl ShiftNumber {
    /// The number after this one.
    pub fn next(self) -> ShiftNumber {
        ShiftNumber(self.0 + 1)
    }
}

impl fmt::Display for ShiftNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The position of an entry in a register's journal: from 1, without gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The first entry of every journal.
    pub const FIRST: Seq = Seq(1);

    /// The entry after this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unp_check_digit() {
        assert_eq!("100231650".parse::<Unp>().unwrap().to_string(), "100231650");
        assert_eq!("100231651".parse::<Unp>(), Err(IdError::UnpCheckDigit("100231651".into())));
        for bad in ["10023165", "1002316500", "10023165a", "", " 100231650", "１00231650"] {
            assert!(matches!(bad.parse::<Unp>(), Err(IdError::UnpFormat(_))), "{bad:?}");
        }
    }

    #[test]
    fn unp_whose_check_sum_is_ten_is_invalid() {
        // 29·1 + 3·1 = 32 ≡ 10 (mod 11): no ninth digit can make it valid.
        for last in 0..=9 {
            let text = format!("10000001{last}");
            assert_eq!(text.parse::<Unp>(), Err(IdError::UnpCheckDigit(text.clone())));
        }
    }

    #[test]
    fn unp_keeps_leading_zeros() {
        // 0·29 + … + 1·3 = 3 → check digit 3.
        let unp: Unp = "000000013".parse().unwrap();
        assert_eq!(unp.to_string(), "000000013");
    }

    #[test]
    fn reg_number_and_its_uid_suffix() {
        let reg: RegNumber = "119026501".parse().unwrap();
        assert_eq!(reg.uid_suffix(), "07183345");
        assert_eq!("999999999".parse::<RegNumber>().unwrap().uid_suffix(), "3B9AC9FF");
        assert!("11902650".parse::<RegNumber>().is_err());
        assert!("11902650x".parse::<RegNumber>().is_err());
    }

    #[test]
    fn serial_is_latin_capitals_and_digits() {
        assert_eq!("AVQ11169990740".parse::<Serial>().unwrap().as_str(), "AVQ11169990740");
        for bad in ["", "avq1", "AVQ 1", "АВК1", &"A".repeat(33)] {
            assert!(bad.parse::<Serial>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_travel_as_strings() {
        let unp: Unp = "100231650".parse().unwrap();
        assert_eq!(serde_json::to_string(&unp).unwrap(), "\"100231650\"");
        assert_eq!(serde_json::from_str::<Unp>("\"100231650\"").unwrap(), unp);
        assert!(serde_json::from_str::<Unp>("\"100231651\"").is_err());
    }
}
