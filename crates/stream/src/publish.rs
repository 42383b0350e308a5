//! Publishing: entries go on a shard's stream under stream id `{seq}-0`, in order, exactly once.
//! A retry after a crash re-adds what was already added; Redis refuses those ids ("equal or
//! smaller than the target stream top item") and the script skips them, so the retry neither
//! fails nor duplicates.

use redis::aio::ConnectionLike;

use crate::{Result, key, with_seq};

/// Adds entries in order, skipping those a previous attempt already added.
const XADD_SCRIPT: &str = r"
local n = 0
for i = 2, #ARGV, 3 do
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i], 'seq', ARGV[i+1], 'event', ARGV[i+2])
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then
      return redis.error_reply(r.err)
    end
  else
    n = n + 1
  end
end
return n
";

pub struct Publisher {
    prefix: String,
    /// Each stream is trimmed to about this many entries; Postgres keeps the history (a
    /// consumer that falls further behind replays from the contacts service).
    maxlen: u64,
    script: redis::Script,
}

/// One entry to publish: its sequence number and the stored event bytes (without `seq`).
pub struct Published<'a> {
    pub seq: u64,
    pub stored: &'a [u8],
}

impl Publisher {
    pub fn new(prefix: impl Into<String>, maxlen: u64) -> Self {
        Self {
            prefix: prefix.into(),
            maxlen,
            script: redis::Script::new(XADD_SCRIPT),
        }
    }

    /// Adds `entries` (in seq order) to the shard's stream; returns how many were new.
    pub async fn publish<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        shard: u32,
        entries: &[Published<'_>],
    ) -> Result<i64> {
        let mut inv = self.script.key(key(&self.prefix, shard));
        inv.arg(self.maxlen);
        for e in entries {
            inv.arg(format!("{}-0", e.seq))
                .arg(e.seq)
                .arg(with_seq(e.stored, e.seq));
        }
        Ok(inv.invoke_async(conn).await?)
    }
}
