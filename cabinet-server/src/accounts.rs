//! Accounts: logins, the password policy of «Мой кабинет», argon2id hashing, and the
//! operator's ways to make users. Everything here but the store calls is pure.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::{PasswordHasher, PasswordVerifier};
use protocol::Unp;

use crate::store::{NewUser, Role, Store, StoreError, UserId};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The login is not of digits, latin letters and `-`.
    #[error("логин: разрешены цифры, латиница и знак \"-\", от 1 до {MAX_LOGIN} символов")]
    BadLogin,
    /// An API token's name is empty or too long.
    #[error("название токена: от 1 до {MAX_TOKEN_NAME} символов")]
    BadTokenName,
    /// The password does not meet the policy.
    #[error("{0}")]
    WeakPassword(&'static str),
    /// The store failed or the user does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (it does not, with valid parameters).
    #[error("ошибка хеширования пароля: {0}")]
    Hash(String),
}

/// The longest login.
pub const MAX_LOGIN: usize = 64;
/// The shortest password.
pub const MIN_PASSWORD: usize = 8;
/// From this length on a password is a passphrase: any characters will do.
pub const PASSPHRASE: usize = 64;
/// The longest password (bounds the work one login attempt can cause).
pub const MAX_PASSWORD: usize = 1024;

/// A login: digits, latin letters and `-` (the manual's rule), 1 to 64 characters.
pub fn check_login(login: &str) -> Result<&str, AccountError> {
    let ok =
        !login.is_empty() && login.len() <= MAX_LOGIN && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok { Ok(login) } else { Err(AccountError::BadLogin) }
}

/// The policy of «Мой кабинет»: upper- and lower-case latin letters and digits, at least 8
/// characters; or any passphrase of at least 64 characters.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars > MAX_PASSWORD {
        return Err(AccountError::WeakPassword("пароль длиннее 1024 символов"));
    }
    if chars >= PASSPHRASE {
        return Ok(());
    }
    if chars < MIN_PASSWORD {
        return Err(AccountError::WeakPassword("пароль короче 8 символов"));
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase) && has(char::is_ascii_lowercase) && has(char::is_ascii_digit)) {
        return Err(AccountError::WeakPassword(
            "пароль должен содержать большие и маленькие латинские буквы и цифры (или быть не короче 64 символов)",
        ));
    }
    Ok(())
}

/// The argon2id hash (PHC string) of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. A malformed stored hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash no password matches, verified when the login is unknown, so that an unknown login
/// takes as long to refuse as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&generate_password()).unwrap_or_default())
}

/// A new random password that meets the policy: 16 characters of latin letters and digits
/// (no look-alikes), with at least one of each class.
pub fn generate_password() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const DIGITS: &[u8] = b"23456789";
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("the OS random source");
    let all: Vec<u8> = [UPPER, LOWER, DIGITS].concat();
    let mut password: Vec<u8> = random.iter().map(|r| all[*r as usize % all.len()]).collect();
    // One of each class at fixed places keeps the policy true whatever the draw.
    password[0] = UPPER[random[0] as usize % UPPER.len()];
    password[1] = LOWER[random[1] as usize % LOWER.len()];
    password[2] = DIGITS[random[2] as usize % DIGITS.len()];
    String::from_utf8(password).expect("ASCII")
}

/// Adds a user with a generated password; returns the password (shown once).
pub fn create_user(
    store: &dyn Store,
    login: &str,
    email: &str,
    role: Role,
    unps: &[Unp],
) -> Result<(UserId, String), AccountError> {
    let login = check_login(login)?;
    let password = generate_password();
    let hash = hash_password(&password)?;
    let id = store.add_user(&NewUser { login, email, role, password_hash: &hash, unps })?;
    Ok((id, password))
}

/// Gives `login` a new generated password, ending all their sessions and revoking their API
/// tokens (a reset answers a lost or stolen password); returns the password.
pub fn reset_password(store: &dyn Store, login: &str) -> Result<String, AccountError> {
    let user = store.user_by_login(login)?.ok_or_else(|| StoreError::NotFound(format!("пользователь {login}")))?;
    let password = generate_password();
    store.set_password(user.id, &hash_password(&password)?)?;
    store.revoke_all_api_tokens(user.id)?;
    Ok(password)
}

/// The longest API token name.
pub const MAX_TOKEN_NAME: usize = 100;

/// Makes an API token named `name` for `user`; returns its id and the token (shown once).
pub fn create_api_token(store: &dyn Store, user: UserId, name: &str) -> Result<(i64, String), AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        return Err(AccountError::BadTokenName);
    }
    let token = crate::tokens::new_token();
    let id = store.add_api_token(user, name, &crate::tokens::token_hash(&token))?;
    Ok((id, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_the_manual() {
        assert!(check_login("ivanov-2").is_ok());
        for bad in ["", "иванов", "a b", "a_b", "a@b", &"x".repeat(65)] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_policy_of_my_cabinet() {
        assert!(check_password("Abcdefg1").is_ok());
        for weak in ["Abcdef1", "abcdefg1", "ABCDEFG1", "Abcdefgh", "Абвгдеж1"] {
            assert!(check_password(weak).is_err(), "{weak:?}");
        }
        assert!(check_password(&"пароль ".repeat(10)).is_ok(), "a 70-character passphrase");
        assert!(check_password(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a, b);
        for p in [a, b] {
            assert_eq!(p.len(), 16);
            check_password(&p).unwrap();
        }
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("Abcdefg1").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("Abcdefg1", &hash));
        assert!(!verify_password("Abcdefg2", &hash));
        assert!(!verify_password("Abcdefg1", "not a hash"));
        assert_ne!(hash, hash_password("Abcdefg1").unwrap(), "a fresh salt each time");
    }
}
