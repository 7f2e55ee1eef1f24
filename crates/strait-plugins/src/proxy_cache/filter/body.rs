//! The cache's body filters: one copies an upstream body for the store, one sends a stored
//! body in place of the upstream's.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strait_http::{BodyFilter, BodyStep, Phase};

use super::super::Settings;
use super::Pending;

/// Copies a response body on its way to the client, and stores the answer when it ends
/// within `max_object_size` (buffering stops once it passes, declared length or not).
pub(super) struct CaptureBody {
    pub(super) settings: Arc<Settings>,
    pub(super) body: BytesMut,
    /// `None` once the body grew too large.
    pub(super) pending: Option<Pending>,
}

impl BodyFilter for CaptureBody {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        if let Some(pending) = &self.pending {
            if self.body.len() + chunk.len() > pending.max_object_size {
                self.pending = None;
                self.body = BytesMut::new();
            } else {
                self.body.extend_from_slice(&chunk);
            }
        }
        if end {
            if let Some(mut pending) = self.pending.take() {
                pending.entry.body = std::mem::take(&mut self.body).freeze();
                self.settings.store(&pending.key, Arc::new(pending.entry));
            }
        }
        Phase::Ready((self as Box<dyn BodyFilter>, Ok(chunk)))
    }
}

/// Sends a stored body in place of the upstream's (which is dropped).
pub(super) struct ReplaceBody {
    pub(super) body: Option<Bytes>,
}

impl BodyFilter for ReplaceBody {
    fn chunk(mut self: Box<Self>, _chunk: Bytes, _end: bool) -> BodyStep {
        let out = self.body.take().unwrap_or_default();
        Phase::Ready((self as Box<dyn BodyFilter>, Ok(out)))
    }
}
