//! Where a process listens, for whoever started it. Tests and `make dev` start services on port
//! 0 and read the ports they got from `MEISA_ADDR_FILE` (JSON: `{"grpc": "127.0.0.1:41234",
//! "metrics": …}`), so no port is picked before the process binds it and taken by another
//! meanwhile.

use std::{collections::BTreeMap, net::SocketAddr};

/// Writes `addrs` to `MEISA_ADDR_FILE` when it is set, atomically (a reader never sees half a
/// file). A failure is logged: the service serves all the same.
pub fn addresses(addrs: &[(&str, SocketAddr)]) {
    let Some(path) = crate::config::optional("MEISA_ADDR_FILE") else {
        return;
    };
    let map: BTreeMap<&str, String> = addrs.iter().map(|(k, a)| (*k, a.to_string())).collect();
    let body = format!(
        "{{{}}}",
        map.iter()
            .map(|(k, v)| format!("\"{k}\": \"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tmp = format!("{path}.tmp");
    let written = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(path, error = %e, "cannot write MEISA_ADDR_FILE");
    }
}
