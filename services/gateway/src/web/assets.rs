//! The dashboard's stylesheet and script, compiled into the binary (one file to deploy, nothing
//! fetched from elsewhere). Their URLs carry a hash of their content, so a browser may keep them
//! for a year and still never runs yesterday's script against today's page.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "meisa.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../static/meisa.css"),
    },
    Asset {
        name: "meisa.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/meisa.js"),
    },
];

/// `meisa.css` → `/assets/meisa.css?v=1a2b3c4d`.
pub fn url(name: &str) -> String {
    static VERSIONS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
        ASSETS
            .iter()
            .map(|a| (a.name, hex::encode(&Sha256::digest(a.body.as_bytes())[..4])))
            .collect()
    });
    let version = VERSIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("0", |(_, v)| v.as_str());
    format!("/assets/{name}?v={version}")
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
