//! What the dispatcher tells its caller: the rows delivered and those that failed.

use belfry_core::Timestamp;

/// What one delivery pass did.
#[derive(Clone, Debug, Default)]
pub struct DeliveryReport {
    /// Rows delivered, by channel name.
    pub delivered: Vec<String>,
    /// Rows that failed.
    pub failed: Vec<Failure>,
}

/// One failed delivery.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The outbox row.
    pub row: i64,
    /// The channel's name.
    pub channel: String,
    /// The channel's URL, redacted.
    pub destination: String,
    /// What went wrong (no secrets).
    pub reason: String,
    /// `None`: permanent, the row is dead. `Some(t)`: it will be tried again from `t`.
    pub retry_at: Option<Timestamp>,
}

impl DeliveryReport {
    /// Whether nothing failed.
    pub fn all_delivered(&self) -> bool {
        self.failed.is_empty()
    }

    pub(crate) fn extend(&mut self, more: DeliveryReport) {
        self.delivered.extend(more.delivered);
        self.failed.extend(more.failed);
    }
}
