//! API keys: `meisa_sk_` + 40 random alphanumerics, shown once, stored only as a SHA-256 hash.
//!
//! SHA-256 rather than a password hash (Argon2, bcrypt) on purpose: a key carries about 238 bits
//! of randomness, so there is no dictionary to try and a slow hash would only add latency to every
//! API call. The hash column is unique, so a lookup is one index probe.

use chrono::{DateTime, Utc};
use meisa_model::id;
use rand::{Rng, distr::Alphanumeric};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool, Row};

use super::StoreError;

pub const KEY_PREFIX: &str = "meisa_sk_";
const RANDOM_LEN: usize = 40;
/// How many random characters the stored, displayable prefix keeps: enough to tell keys apart,
/// far too few to guess the rest.
pub const DISPLAY_RANDOM_LEN: usize = 8;

pub type KeyHash = [u8; 32];

pub fn generate() -> String {
    // ThreadRng is a CSPRNG seeded from the OS.
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect();
    format!("{KEY_PREFIX}{random}")
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// `meisa_sk_` and the first random characters: what `admin list-keys` shows and
/// `admin revoke-key --key-prefix` takes.
pub fn display_prefix(key: &str) -> String {
    key.chars()
        .take(KEY_PREFIX.len() + DISPLAY_RANDOM_LEN)
        .collect()
}

/// Rejects what cannot be a key without a database round trip.
pub fn looks_like_key(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|r| {
        r.len() >= 32 && r.len() <= 128 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub workspace_id: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The dashboard user who made it; none for keys made by `gateway admin`.
    pub created_by: Option<String>,
    /// To the minute: the lookup records a use at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "id, workspace_id, key_prefix, created_at, revoked_at, created_by, last_used_at";

/// Creates a key for `workspace_id` and returns it in full; this is the only time it exists in
/// clear.
pub async fn create(db: impl PgExecutor<'_>, workspace_id: &str) -> Result<String, StoreError> {
    create_by(db, workspace_id, None).await
}

/// As [`create`], recording who made the key.
pub async fn create_by(
    db: impl PgExecutor<'_>,
    workspace_id: &str,
    created_by: Option<&str>,
) -> Result<String, StoreError> {
    let key = generate();
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, key_prefix, key_hash, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id::new("key"))
    .bind(workspace_id)
    .bind(display_prefix(&key))
    .bind(&hash(&key)[..])
    .bind(created_by)
    .execute(db)
    .await?;
    Ok(key)
}

/// The workspace an active key acts for.
pub async fn workspace_for(pool: &PgPool, hash: &KeyHash) -> Result<Option<String>, StoreError> {
    // The same statement records the use when the last one is over a minute old: one round trip,
    // and at most one write a minute per key however busy it is.
    let row = sqlx::query(
        "WITH k AS (SELECT id, workspace_id, last_used_at FROM api_keys \
                    WHERE key_hash = $1 AND revoked_at IS NULL), \
              touch AS (UPDATE api_keys SET last_used_at = now() \
                    WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL \
                                 OR last_used_at < now() - interval '1 minute')) \
         SELECT workspace_id FROM k",
    )
    .bind(&hash[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.get("workspace_id")))
}

pub async fn list(pool: &PgPool, workspace_id: &str) -> Result<Vec<KeyInfo>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id"
    ))
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(key_info).collect())
}

/// Active keys whose displayable prefix is `prefix`.
pub async fn find_active_by_prefix(
    pool: &PgPool,
    prefix: &str,
) -> Result<Vec<KeyInfo>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys \
             WHERE key_prefix = $1 AND revoked_at IS NULL ORDER BY created_at, id"
    ))
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(key_info).collect())
}

pub async fn find_active_by_hash(
    pool: &PgPool,
    hash: &KeyHash,
) -> Result<Option<KeyInfo>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(&hash[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(key_info))
}

pub async fn revoke(pool: &PgPool, key_id: &str) -> Result<Option<KeyInfo>, StoreError> {
    revoke_where(pool, None, key_id).await
}

/// Revokes a key of `workspace_id` only: another workspace's key id revokes nothing.
pub async fn revoke_in(
    pool: &PgPool,
    workspace_id: &str,
    key_id: &str,
) -> Result<Option<KeyInfo>, StoreError> {
    revoke_where(pool, Some(workspace_id), key_id).await
}

async fn revoke_where(
    pool: &PgPool,
    workspace_id: Option<&str>,
    key_id: &str,
) -> Result<Option<KeyInfo>, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE api_keys SET revoked_at = now() \
         WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR workspace_id = $2) \
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(key_id)
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(key_info))
}

fn key_info(r: &sqlx::postgres::PgRow) -> KeyInfo {
    KeyInfo {
        key_id: r.get("id"),
        workspace_id: r.get("workspace_id"),
        key_prefix: r.get("key_prefix"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
        created_by: r.get("created_by"),
        last_used_at: r.get("last_used_at"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_long_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + RANDOM_LEN);
        assert!(looks_like_key(&a));
        assert_ne!(a, b);
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(
            display_prefix(&a).len(),
            KEY_PREFIX.len() + DISPLAY_RANDOM_LEN
        );
    }

    #[test]
    fn obvious_non_keys_are_refused_without_a_lookup() {
        assert!(!looks_like_key(""));
        assert!(!looks_like_key("meisa_sk_short"));
        assert!(!looks_like_key(
            "sk_live_0123456789012345678901234567890123"
        ));
        assert!(!looks_like_key(
            "meisa_sk_0123456789012345678901234567890123-/"
        ));
    }
}
