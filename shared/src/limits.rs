//! Numbers of the public contract that the edge enforces and the SDK respects.

/// Largest body `POST /v1/batch` accepts.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 100;
/// The SDK keeps each beacon under this, below `MAX_BATCH_BYTES` and the
/// browsers' 64 KiB in-flight beacon quota, leaving room for the envelope.
pub const BEACON_CHUNK_BYTES: usize = 60 * 1024;
const _: () = assert!(
    BEACON_CHUNK_BYTES < MAX_BATCH_BYTES,
    "a beacon's chunk leaves room for the envelope"
);
/// Longest event name.
pub const MAX_EVENT_NAME_CHARS: usize = 128;
/// Longest anonymous or user id.
pub const MAX_ID_CHARS: usize = 128;
/// Most events the SDK keeps persisted while it cannot deliver them.
pub const MAX_PERSISTED_EVENTS: usize = 1000;
const _: () = assert!(
    MAX_PERSISTED_EVENTS >= MAX_BATCH_EVENTS,
    "the SDK keeps at least one full batch"
);
/// Most traits one event may set, and one participant may hold.
pub const MAX_TRAITS: usize = 50;
/// Longest trait key.
pub const MAX_TRAIT_KEY_CHARS: usize = 64;
/// Largest trait value, as JSON text.
pub const MAX_TRAIT_VALUE_BYTES: usize = 1024;
const _: () = assert!(MAX_TRAIT_VALUE_BYTES < MAX_BATCH_BYTES, "one trait fits in a batch");
/// How far back a client's timestamp may go (older ones are taken as this):
/// the SDK keeps undelivered events for days, never for months.
pub const MAX_EVENT_AGE_MS: i64 = 30 * 86_400_000;
