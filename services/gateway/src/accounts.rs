//! Dashboard accounts (DESIGN §6): who may sign in, with which password, and how guessing is
//! throttled. The pages in [`crate::web`] and `gateway admin create-user` both come here; the
//! tables are in [`crate::store::accounts`], [`crate::store::sessions`] and
//! [`crate::store::sign_in_failures`].
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, OWASP's minimum: 19 MiB,
//! 2 passes) on the blocking pool, so a burst of sign-ins does not stall the API's requests.
//! Session and invitation tokens are 256 random bits, stored as SHA-256 like API keys.

use std::{net::IpAddr, time::Duration};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use meisa_model::{EmailAddress, EmailError};
use rand::{Rng, RngCore, distr::Alphanumeric};
use sqlx::PgPool;

use crate::store::{
    StoreError,
    accounts::{self, Created, User},
    keys::{self, KeyHash},
    sessions, sign_in_failures,
};

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 takes any length, but hashing a megabyte per guess is a cheap way to burn our CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a session lasts after sign-in; signing in again starts a new one.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email: {0}")]
    Email(#[from] EmailError),
    #[error("password: at least {MIN_PASSWORD_CHARS} characters, please")]
    PasswordTooShort,
    #[error("password: at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("{0} already has an account")]
    EmailTaken(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A password someone chose, checked against the length rules.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, AccountError> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::PasswordTooShort);
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(AccountError::PasswordTooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password for a user nobody chose one for yet (`make dev`'s first user): 20 letters and
    /// digits, about 119 bits.
    pub fn generate() -> Self {
        Self(
            rand::rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from)
                .collect(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    async fn hash(self) -> Result<String, AccountError> {
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(self.0.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AccountError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }
}

/// Whether `password` matches the stored PHC string. A hash that cannot be read matches nothing.
async fn verify(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash of nothing anyone knows, checked when the email has no account so that an
/// unknown address takes as long to refuse as a wrong password (no account enumeration by timing).
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bWVpc2FkZWNveXNhbHQ$u0tWnKqS0OH3r3xHnvD2I1m0O5OZ6Ef1t2qSR0Z7m3k";

pub async fn create_user(
    pool: &PgPool,
    workspace_id: &str,
    email: &EmailAddress,
    password: NewPassword,
) -> Result<User, AccountError> {
    let hash = password.hash().await?;
    match accounts::create(pool, workspace_id, email, &hash).await? {
        Created::User(user) => Ok(user),
        Created::EmailTaken => Err(AccountError::EmailTaken(email.to_string())),
    }
}

/// Accepts an invitation: its user, or `None` when the link expired or was used meanwhile.
pub async fn accept_invite(
    pool: &PgPool,
    token_hash: &KeyHash,
    password: NewPassword,
) -> Result<Option<User>, AccountError> {
    let hash = password.hash().await?;
    match accounts::accept_invite(pool, token_hash, &hash).await? {
        None => Ok(None),
        Some(Created::User(user)) => Ok(Some(user)),
        Some(Created::EmailTaken) => Err(AccountError::EmailTaken("this address".into())),
    }
}

/// Invites `email` to the workspace: the link's token, in clear this once (only its hash is
/// kept). An address that already has an account is refused: one account per address.
pub async fn invite(
    pool: &PgPool,
    workspace_id: &str,
    email: &str,
    invited_by: &str,
) -> Result<String, AccountError> {
    let email = EmailAddress::parse(email)?;
    if accounts::credentials(pool, &email).await?.is_some() {
        return Err(AccountError::EmailTaken(email.to_string()));
    }
    let (token, hash) = token();
    let expires_at = Utc::now() + chrono::Duration::from_std(INVITE_LIFETIME).unwrap_or_default();
    accounts::create_invite(pool, workspace_id, &email, invited_by, &hash, expires_at).await?;
    Ok(token)
}

/// A random token for a cookie or a link, and the hash that is stored of it.
pub fn token() -> (String, KeyHash) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = keys::hash(&token);
    (token, hash)
}

/// A session that was just created: the token goes into the cookie, nowhere else.
pub struct NewSession {
    pub token: String,
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

pub async fn start_session(pool: &PgPool, user: User) -> Result<NewSession, AccountError> {
    let (token, hash) = token();
    let (csrf, _) = self::token();
    let expires_at = Utc::now() + chrono::Duration::from_std(SESSION_LIFETIME).unwrap_or_default();
    sessions::create(pool, &hash, &user.id, &csrf, expires_at).await?;
    Ok(NewSession {
        token,
        user,
        expires_at,
    })
}

/// How many failed sign-ins are tolerated, per account and per client address, within `window`.
#[derive(Clone, Copy, Debug)]
pub struct SignInLimits {
    pub per_account: i64,
    pub per_address: i64,
    pub window: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures lately; try again after this long.
    #[error("too many attempts; try again in {} s", retry_after.as_secs())]
    Throttled { retry_after: Duration },
    /// The one answer for an unknown email and a wrong password alike.
    #[error("wrong email or password")]
    Wrong,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// Checks the password and opens a session. Throttled before the password is even looked at, so
/// a guesser learns nothing once over the limit, not even whether a guess was right.
pub async fn sign_in(
    pool: &PgPool,
    limits: SignInLimits,
    email: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<NewSession, SignInError> {
    let email = EmailAddress::parse(email).map_err(|_| SignInError::Wrong);
    let account_key = format!("account:{}", email.as_ref().map_or("", |e| e.as_str()));
    let mut throttle_keys = vec![account_key.clone()];
    if let Some(addr) = client {
        throttle_keys.push(format!("address:{addr}"));
    }
    for key in &throttle_keys {
        let limit = if key.starts_with("account:") {
            limits.per_account
        } else {
            limits.per_address
        };
        let (count, oldest) = sign_in_failures::recent(pool, key, limits.window).await?;
        if count >= limit {
            let window = chrono::Duration::from_std(limits.window).unwrap_or_default();
            let free_at = oldest.map_or_else(Utc::now, |t| t + window);
            let retry_after = (free_at - Utc::now())
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1));
            return Err(SignInError::Throttled { retry_after });
        }
    }
    let found = match &email {
        Ok(email) => accounts::credentials(pool, email).await?,
        Err(_) => None,
    };
    let password = password
        .chars()
        .take(MAX_PASSWORD_BYTES)
        .collect::<String>();
    let (stored, user) = match found {
        Some(c) => (c.password_hash, Some(c.user)),
        None => (DECOY_HASH.to_string(), None),
    };
    let matched = verify(password, stored).await;
    match (matched, user) {
        (true, Some(user)) => {
            sign_in_failures::clear(pool, &account_key).await?;
            Ok(start_session(pool, user).await?)
        }
        _ => {
            sign_in_failures::record(pool, &throttle_keys, limits.window).await?;
            Err(SignInError::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_floor_and_a_ceiling() {
        assert!(matches!(
            NewPassword::parse("short"),
            Err(AccountError::PasswordTooShort)
        ));
        assert!(matches!(
            NewPassword::parse(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(AccountError::PasswordTooLong)
        ));
        assert!(NewPassword::parse("correct horse").is_ok());
        assert_eq!(NewPassword::generate().expose().len(), 20);
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = NewPassword::parse("correct horse")
            .unwrap()
            .hash()
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify("correct horse".into(), hash.clone()).await);
        assert!(!verify("correct horsf".into(), hash).await);
        assert!(!verify("anything".into(), DECOY_HASH.into()).await);
        assert!(!verify("anything".into(), "not a hash".into()).await);
    }

    #[test]
    fn the_decoy_hash_is_a_real_argon2id_hash() {
        // If it did not parse, an unknown email would be refused faster than a wrong password.
        let parsed = PasswordHash::new(DECOY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, ha) = token();
        let (b, hb) = token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(ha, hb);
    }
}
