//! Retention: raw messages and quarantine are kept for a configurable time;
//! hourly rollups stay for history and routine learning.

use super::{Store, StoreError};

impl Store {
    /// Deletes raw messages and quarantined input received before `cutoff`.
    /// Returns how many messages went.
    pub async fn expire_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let messages =
            sqlx::query("DELETE FROM messages WHERE received_at < $1").bind(cutoff).execute(&self.pool).await?;
        sqlx::query("DELETE FROM quarantine WHERE received_at < $1").bind(cutoff).execute(&self.pool).await?;
        Ok(messages.rows_affected())
    }
}
