//! Numbers of the public contract that the edge enforces and the SDK respects.

/// Largest body `POST /v1/batch` accepts.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 100;
/// The SDK keeps each beacon under this, below `MAX_BATCH_BYTES` and the
/// browsers' 64 KiB in-flight beacon quota, leaving room for the envelope.
pub const BEACON_CHUNK_BYTES: usize = 60 * 1024;
/// Longest event name.
pub const MAX_EVENT_NAME_CHARS: usize = 128;
/// Longest anonymous or user id.
pub const MAX_ID_CHARS: usize = 128;
/// Most events the SDK keeps persisted while it cannot deliver them.
pub const MAX_PERSISTED_EVENTS: usize = 1000;
