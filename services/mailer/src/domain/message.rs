//! Message statuses and suppression reasons as stored (text columns) and as sent (proto enums).

use meisa_proto::mailer::{MessageStatus, SuppressionReason};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sent,
    Failed,
    Suppressed,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Suppressed => "suppressed",
            Status::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Status::Queued,
            "sent" => Status::Sent,
            "failed" => Status::Failed,
            "suppressed" => Status::Suppressed,
            "skipped" => Status::Skipped,
            _ => return None,
        })
    }

    pub fn to_proto(self) -> MessageStatus {
        match self {
            Status::Queued => MessageStatus::Queued,
            Status::Sent => MessageStatus::Sent,
            Status::Failed => MessageStatus::Failed,
            Status::Suppressed => MessageStatus::Suppressed,
            Status::Skipped => MessageStatus::Skipped,
        }
    }

    pub fn from_proto(s: MessageStatus) -> Option<Self> {
        Some(match s {
            MessageStatus::Unspecified => return None,
            MessageStatus::Queued => Status::Queued,
            MessageStatus::Sent => Status::Sent,
            MessageStatus::Failed => Status::Failed,
            MessageStatus::Suppressed => Status::Suppressed,
            MessageStatus::Skipped => Status::Skipped,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Manual,
    Bounce,
    Complaint,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "manual",
            Reason::Bounce => "bounce",
            Reason::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "manual" => Reason::Manual,
            "bounce" => Reason::Bounce,
            "complaint" => Reason::Complaint,
            _ => return None,
        })
    }

    pub fn to_proto(self) -> SuppressionReason {
        match self {
            Reason::Manual => SuppressionReason::Manual,
            Reason::Bounce => SuppressionReason::Bounce,
            Reason::Complaint => SuppressionReason::Complaint,
        }
    }

    pub fn from_proto(r: SuppressionReason) -> Self {
        match r {
            SuppressionReason::Bounce => Reason::Bounce,
            SuppressionReason::Complaint => Reason::Complaint,
            SuppressionReason::Manual | SuppressionReason::Unspecified => Reason::Manual,
        }
    }
}
