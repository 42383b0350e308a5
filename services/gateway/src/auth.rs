//! Bearer authentication: every `/api/v1/` route except the OpenAPI document runs behind
//! [`require_api_key`], which resolves the key to its workspace. Handlers read the workspace with
//! the [`Workspace`] extractor and pass it to the services, which scope every query by it.
//!
//! The middleware's state is an [`Authenticator`] (the gateway's database and the key cache), not
//! the whole application state, so this module depends on nothing the handlers define.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::Response,
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use sqlx::PgPool;

use crate::{
    error::AppError,
    store::keys::{self, KeyHash},
};

/// The workspace the request's API key belongs to.
#[derive(Clone, Debug)]
pub struct Workspace(pub Arc<str>);

impl Workspace {
    pub fn id(&self) -> String {
        self.0.to_string()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Workspace {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        // Absent only if a route was mounted outside the auth layer: a gateway bug, not the
        // caller's, and never a reason to serve unscoped data.
        parts
            .extensions
            .get::<Workspace>()
            .cloned()
            .ok_or_else(|| AppError::Internal("route is not behind require_api_key".into()))
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::Api(ApiError::new(ErrorCode::Unauthorized, message))
}

/// What resolves an API key to its workspace: the table of keys and the cache in front of it.
#[derive(Clone)]
pub struct Authenticator {
    pool: PgPool,
    keys: Arc<KeyCache>,
}

impl Authenticator {
    pub fn new(pool: PgPool, cache_ttl: Duration) -> Self {
        Self {
            pool,
            keys: Arc::new(KeyCache::new(cache_ttl)),
        }
    }
}

pub async fn require_api_key(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let key = bearer(req.headers())?;
    let workspace = auth.keys.authenticate(&auth.pool, key).await?;
    req.extensions_mut().insert(workspace);
    Ok(next.run(req).await)
}

fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized("missing API key: send the header `Authorization: Bearer meisa_sk_…`")
    })?;
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <API key>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <API key>`",
        ));
    }
    Ok(token.trim())
}

/// Recently verified keys, so that an API call costs no extra database round trip. Only hits are
/// cached (a stream of bad keys cannot fill memory with misses) and entries expire after `ttl`:
/// a revoked key keeps working for at most `ttl` on a replica that had it cached.
struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<KeyHash, (Workspace, Instant)>>,
}

const CACHE_CAPACITY: usize = 10_000;

impl KeyCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    async fn authenticate(&self, pool: &PgPool, key: &str) -> Result<Workspace, AppError> {
        if !keys::looks_like_key(key) {
            return Err(unauthorized("invalid API key"));
        }
        let hash = keys::hash(key);
        if let Some(ws) = self.get(&hash) {
            return Ok(ws);
        }
        let workspace_id = keys::workspace_for(pool, &hash)
            .await
            .map_err(AppError::Store)?
            .ok_or_else(|| unauthorized("invalid or revoked API key"))?;
        let ws = Workspace(workspace_id.into());
        self.put(hash, ws.clone());
        Ok(ws)
    }

    fn get(&self, hash: &KeyHash) -> Option<Workspace> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(ws, _)| ws.clone())
    }

    fn put(&self, hash: KeyHash, ws: Workspace) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, (ws, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(&headers("Bearer meisa_sk_x")).unwrap(), "meisa_sk_x");
        assert_eq!(
            bearer(&headers("bearer  meisa_sk_x ")).unwrap(),
            "meisa_sk_x"
        );
        assert!(bearer(&headers("Basic abc")).is_err());
        assert!(bearer(&headers("meisa_sk_x")).is_err());
        assert!(bearer(&HeaderMap::new()).is_err());
    }

    #[test]
    fn cache_entries_expire() {
        let cache = KeyCache::new(Duration::from_millis(30));
        let h = keys::hash("k");
        cache.put(h, Workspace("ws_1".into()));
        assert_eq!(cache.get(&h).map(|w| w.id()), Some("ws_1".to_string()));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&h).is_none());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        let h = keys::hash("k");
        cache.put(h, Workspace("ws_1".into()));
        assert!(cache.get(&h).is_none());
    }
}
