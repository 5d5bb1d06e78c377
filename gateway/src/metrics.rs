//! Metric names, in one place. Exported in Prometheus format at `/metrics`.

pub const RECEIVED: &str = "anxin_messages_received_total";
pub const STORED: &str = "anxin_messages_stored_total";
pub const DUPLICATES: &str = "anxin_messages_duplicate_total";
pub const STATUSES: &str = "anxin_status_messages_total";
pub const REJECTED: &str = "anxin_messages_rejected_total";
pub const BATCH_SIZE: &str = "anxin_ingest_batch_size";
pub const COMMIT_SECONDS: &str = "anxin_ingest_commit_seconds";
pub const COMMIT_FAILURES: &str = "anxin_ingest_commit_failures_total";
pub const ACK_LAG_SECONDS: &str = "anxin_ingest_ack_lag_seconds";
pub const INGEST_STALLED_SECONDS: &str = "anxin_ingest_stalled_seconds";
pub const INGEST_WAITING: &str = "anxin_ingest_waiting";
pub const DEVICES_ONLINE: &str = "anxin_devices_online";
pub const DEVICES_OFFLINE: &str = "anxin_devices_offline";
pub const BROKER_CONNECTED: &str = "anxin_broker_connected";
pub const BROKER_REFUSED: &str = "anxin_broker_refused_total";
pub const BROKER_CONNECTIONS: &str = "anxin_broker_connections";
pub const BROKER_CONNECTIONS_REFUSED: &str = "anxin_broker_connections_refused_total";
pub const BROKER_RETAINED: &str = "anxin_broker_retained_messages";
pub const OPEN_FILES_LIMIT: &str = "anxin_open_files_limit";
pub const ALERTS_OPEN: &str = "anxin_alerts_open";
pub const ALERTS_UNACKNOWLEDGED_SECONDS: &str = "anxin_alerts_oldest_unacknowledged_seconds";
pub const ACKNOWLEDGED_WITHIN_60S: &str = "anxin_alerts_acknowledged_within_60s_ratio";
pub const ACKNOWLEDGED_WITHIN_180S: &str = "anxin_alerts_acknowledged_within_180s_ratio";
pub const DATA_FREE_BYTES: &str = "anxin_data_free_bytes";
pub const STORAGE_FULL: &str = "anxin_storage_full";
pub const RETENTION_REMOVED: &str = "anxin_retention_removed_total";
pub const UPKEEP_RUNS: &str = "anxin_upkeep_runs_total";
pub const TIMER_LATENESS_SECONDS: &str = "anxin_alert_timer_lateness_seconds";
pub const ALERTS_DELIVERED: &str = "anxin_alert_changes_delivered_total";
pub const ALERT_DELIVERIES_ABANDONED: &str = "anxin_alert_deliveries_abandoned_total";
pub const RESPONDER_SMS_SENT: &str = "anxin_responder_messages_sent_total";
pub const RESPONDER_SMS_FAILURES: &str = "anxin_responder_message_failures_total";

/// Describes every metric once, so `/metrics` carries help texts.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RECEIVED, "Messages received from the broker");
    describe_counter!(STORED, "Events and summaries stored for the first time");
    describe_counter!(DUPLICATES, "Redelivered events and summaries (already stored)");
    describe_counter!(STATUSES, "Status messages applied (online, offline, Last Will)");
    describe_counter!(REJECTED, "Messages refused, by reason");
    describe_histogram!(BATCH_SIZE, "Messages per committed batch");
    describe_histogram!(COMMIT_SECONDS, "Time to commit one batch");
    describe_counter!(COMMIT_FAILURES, "Batch commits that failed and were retried");
    describe_histogram!(ACK_LAG_SECONDS, "Time from receiving a message to its acknowledgement being released");
    describe_gauge!(
        INGEST_STALLED_SECONDS,
        "How long ingest has made no progress while messages wait (0 while it moves)"
    );
    describe_gauge!(INGEST_WAITING, "Messages received and not yet acknowledged");
    describe_gauge!(DEVICES_ONLINE, "Devices currently online");
    describe_gauge!(DEVICES_OFFLINE, "Devices currently offline");
    describe_counter!(
        BROKER_REFUSED,
        "What the embedded broker refused, by reason (anonymous, bad_credentials, publish_not_allowed, rate_limited, …)"
    );
    describe_gauge!(BROKER_CONNECTIONS, "Clients connected to the embedded broker");
    describe_counter!(
        BROKER_CONNECTIONS_REFUSED,
        "Connections the embedded broker closed at once: over --mqtt-max-connections"
    );
    describe_gauge!(BROKER_RETAINED, "Retained messages the embedded broker holds (devices' status)");
    describe_gauge!(OPEN_FILES_LIMIT, "The open-file limit this process raised itself to at start");
    describe_gauge!(BROKER_CONNECTED, "1 while the gateway is connected to an external broker");
    describe_gauge!(ALERTS_OPEN, "Alerts not yet resolved, by severity");
    describe_gauge!(
        ALERTS_UNACKNOWLEDGED_SECONDS,
        "Age of the oldest alert nobody has acknowledged yet, by severity (0: none)"
    );
    describe_gauge!(
        ACKNOWLEDGED_WITHIN_60S,
        "Share of the last 24 hours' alerts acknowledged within 60 s, by severity (NaN: none)"
    );
    describe_gauge!(
        ACKNOWLEDGED_WITHIN_180S,
        "Share of the last 24 hours' alerts acknowledged within 3 minutes, by severity (NaN: none)"
    );
    describe_gauge!(DATA_FREE_BYTES, "Bytes free for the data folder's file system (SQLite)");
    describe_gauge!(STORAGE_FULL, "1 while the database has no room to write (ingest waits, acknowledging nothing)");
    describe_counter!(
        RETENTION_REMOVED,
        "Records past their retention removed (or, for left elders, anonymised) by the daily job, by record"
    );
    describe_counter!(UPKEEP_RUNS, "Rounds of the upkeep loop (device sweep, alert gauges, retention)");
    describe_histogram!(TIMER_LATENESS_SECONDS, "How long after its deadline a home was looked at by the timer loop");
    describe_counter!(ALERTS_DELIVERED, "Alert changes delivered, by sink (mqtt, webhook)");
    describe_counter!(ALERT_DELIVERIES_ABANDONED, "Alert changes given up after a day of retries, by sink");
    describe_counter!(RESPONDER_SMS_SENT, "Responder chain messages the SMS provider took, by provider");
    describe_counter!(
        RESPONDER_SMS_FAILURES,
        "Responder chain messages the SMS provider refused or did not answer (each retried with backoff)"
    );
}
