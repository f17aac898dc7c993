//! The hash chain that links a register's journal entries, and the UID derived from it.
//!
//! `hash = SHA-256(prev_hash || payload bytes)`; the first entry's `prev_hash` is all zeros.
//! Changing any byte of any entry changes its hash and breaks every link after it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::ids::{RegNumber, Seq};

/// A SHA-256 digest in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev_hash` of a journal's first entry.
    pub const ZERO: ChainHash = ChainHash([0; 32]);

    /// The hash of an entry whose predecessor has hash `prev` and whose payload is `payload`.
    pub fn link(prev: &ChainHash, payload: &[u8]) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(prev.0);
        hasher.update(payload);
        ChainHash(hasher.finalize().into())
    }

    /// Lower-case hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

/// The text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("хеш должен состоять из 64 шестнадцатеричных цифр")]
pub struct BadHash;

impl FromStr for ChainHash {
    type Err = BadHash;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| BadHash)?;
        Ok(ChainHash(bytes))
    }
}

impl TryFrom<&[u8]> for ChainHash {
    type Error = BadHash;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        bytes.try_into().map(ChainHash).map_err(|_| BadHash)
    }
}

/// CBOR carries the 32 raw bytes; JSON carries hex.
impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            let bytes = serde_bytes::ByteBuf::deserialize(deserializer)?;
            ChainHash::try_from(bytes.as_slice()).map_err(serde::de::Error::custom)
        }
    }
}

/// One journal entry as it travels: its place, its links and its payload bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its position in the register's journal, from 1.
    pub seq: Seq,
    /// The hash of the entry before (all zeros for the first).
    pub prev_hash: ChainHash,
    /// `SHA-256(prev_hash || payload)`.
    pub hash: ChainHash,
    /// The CBOR bytes of one [`crate::Payload`], exactly as journaled.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Entry {
    /// The entry after `head` holding `payload`, with its hash computed.
    pub fn after(head: &ChainHead, payload: Vec<u8>) -> Entry {
        let hash = ChainHash::link(&head.hash, &payload);
        Entry { seq: head.seq.next(), prev_hash: head.hash, hash, payload }
    }
}

/// The end of a chain: the last entry's seq and hash (`Seq(0)` and zeros when empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The last entry's seq, or 0 for an empty journal.
    pub seq: Seq,
    /// The last entry's hash, or zeros for an empty journal.
    pub hash: ChainHash,
}

impl ChainHead {
    /// The head of an empty journal.
    pub const EMPTY: ChainHead = ChainHead { seq: Seq(0), hash: ChainHash::ZERO };

    /// Checks that `entry` comes right after this head and is hashed right, and if so moves
    /// the head onto it.
    pub fn advance(&mut self, entry: &Entry) -> Result<(), ChainError> {
        let seq = entry.seq;
        if seq != self.seq.next() {
            return Err(ChainError { seq, fault: ChainFault::OutOfOrder { expected: self.seq.next() } });
        }
        if entry.prev_hash != self.hash {
            return Err(ChainError { seq, fault: ChainFault::BrokenLink });
        }
        if ChainHash::link(&entry.prev_hash, &entry.payload) != entry.hash {
            return Err(ChainError { seq, fault: ChainFault::WrongHash });
        }
        *self = ChainHead { seq, hash: entry.hash };
        Ok(())
    }
}

/// What is wrong at the first bad entry of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFault {
    /// The entry's seq is not the one after its predecessor (a gap, a repeat, a reorder).
    OutOfOrder {
        /// The seq that should have come.
        expected: Seq,
    },
    /// Its `prev_hash` is not its predecessor's hash.
    BrokenLink,
    /// Its `hash` is not `SHA-256(prev_hash || payload)`: the payload or the hash was altered.
    WrongHash,
}

/// The first entry at which a chain does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("цепочка нарушена на записи {seq}: {fault}")]
pub struct ChainError {
    /// The first bad entry.
    pub seq: Seq,
    /// What is wrong with it.
    pub fault: ChainFault,
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainFault::OutOfOrder { expected } => write!(f, "ожидалась запись {expected}"),
            ChainFault::BrokenLink => f.write_str("ссылка на предыдущую запись не совпадает"),
            ChainFault::WrongHash => f.write_str("хеш не соответствует содержимому"),
        }
    }
}

/// Verifies `entries` as the continuation of a chain ending at `head`; returns the new
/// head, or the first entry that does not verify.
pub fn verify_chain<'a>(
    head: ChainHead,
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Result<ChainHead, ChainError> {
    let mut head = head;
    for entry in entries {
        head.advance(entry)?;
    }
    Ok(head)
}

/// A document's identifier (УИ): 16 hex digits of its entry's hash and the 8 hex digits of
/// the register's РН СККО, upper case (`9B1D11772840238E07183345`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(String);

/// The text is not a UID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("УИ «{0}» должен состоять из 24 шестнадцатеричных цифр")]
pub struct BadUid(pub String);

impl Uid {
    /// The UID of the document journaled with hash `hash` on register `reg`.
    pub fn new(hash: &ChainHash, reg: RegNumber) -> Uid {
        let mut text = hex::encode_upper(&hash.0[..8]);
        text.push_str(&reg.uid_suffix());
        Uid(text)
    }

    /// The UID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Uid {
    type Err = BadUid;
    /// Accepts either case; keeps upper case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 24 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadUid(text.to_owned()));
        }
        Ok(Uid(text.to_ascii_uppercase()))
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0)
    }
}

serde_as_string!(Uid);

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(payloads: &[&[u8]]) -> Vec<Entry> {
        let mut head = ChainHead::EMPTY;
        payloads
            .iter()
            .map(|p| {
                let entry = Entry::after(&head, p.to_vec());
                head = ChainHead { seq: entry.seq, hash: entry.hash };
                entry
            })
            .collect()
    }

    #[test]
    fn first_link_hashes_zeros_then_payload() {
        let entries = chain(&[b"abc"]);
        let mut input = vec![0u8; 32];
        input.extend_from_slice(b"abc");
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(entries[0].hash.0, expected);
        assert_eq!(entries[0].prev_hash, ChainHash::ZERO);
        assert_eq!(entries[0].seq, Seq(1));
    }

    #[test]
    fn verifier_accepts_a_good_chain_and_names_the_first_bad_seq() {
        let entries = chain(&[b"a", b"b", b"c", b"d"]);
        let head = verify_chain(ChainHead::EMPTY, &entries).unwrap();
        assert_eq!(head.seq, Seq(4));

        let mut altered = entries.clone();
        altered[2].payload[0] ^= 1;
        assert_eq!(
            verify_chain(ChainHead::EMPTY, &altered),
            Err(ChainError { seq: Seq(3), fault: ChainFault::WrongHash })
        );

        let mut relinked = entries.clone();
        relinked[1].prev_hash.0[5] ^= 0x80;
        assert_eq!(verify_chain(ChainHead::EMPTY, &relinked).unwrap_err().seq, Seq(2));

        let gap = [entries[0].clone(), entries[2].clone()];
        assert_eq!(
            verify_chain(ChainHead::EMPTY, &gap),
            Err(ChainError { seq: Seq(3), fault: ChainFault::OutOfOrder { expected: Seq(2) } })
        );

        // A continuation is verified against the head it continues.
        let middle = ChainHead { seq: entries[1].seq, hash: entries[1].hash };
        assert_eq!(verify_chain(middle, &entries[2..]).unwrap(), head);
        assert!(verify_chain(ChainHead::EMPTY, &entries[2..]).is_err());
    }

    #[test]
    fn uid_is_hash_prefix_and_reg_number_in_hex() {
        let hash: ChainHash = "9b1d11772840238eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let uid = Uid::new(&hash, "119026501".parse().unwrap());
        assert_eq!(uid.as_str(), "9B1D11772840238E07183345");
        assert_eq!("9b1d11772840238e07183345".parse::<Uid>().unwrap(), uid);
        assert!("9B1D11772840238E0718334".parse::<Uid>().is_err());
        assert!("9B1D11772840238E0718334G".parse::<Uid>().is_err());
    }

    #[test]
    fn hash_is_bytes_in_cbor_and_hex_in_json() {
        let hash = ChainHash([7; 32]);
        let cbor = crate::wire::encode(&hash);
        assert_eq!(cbor[0], 0x58); // byte string, one-byte length
        assert_eq!(cbor[1], 32);
        assert_eq!(crate::wire::decode::<ChainHash>(&cbor, 100).unwrap(), hash);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        assert_eq!(serde_json::from_str::<ChainHash>(&json).unwrap(), hash);
    }
}
