//! The notification channel between two domains (a Xen event channel with
//! its shared ring, as xen-zcopy and hyper_dmabuf use it): the exporter
//! announces a buffer, signals fences, asks for revocation; the importer
//! acknowledges the unmap. Synchronisation is explicit: an importer reads
//! only after the fence it waits for was signalled.

use super::ids::GrantRef;
use crate::sync::Mutex;
use alloc::collections::VecDeque;

/// One message on the channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Message {
    /// A buffer: the first directory page's reference and the page count.
    Export {
        /// First directory page.
        first: GrantRef,
        /// Buffer pages.
        pages: u32,
    },
    /// The exporter's writes up to fence `seq` are complete.
    Fence {
        /// Sequence number.
        seq: u64,
    },
    /// The exporter revokes the buffer: unmap it.
    Revoke {
        /// First directory page of the buffer.
        first: GrantRef,
    },
    /// The importer unmapped the buffer.
    Unmapped {
        /// First directory page of the buffer.
        first: GrantRef,
    },
}

/// One direction of a channel: a FIFO of messages plus the last fence
/// signalled on it.
#[derive(Debug, Default)]
pub struct Channel {
    ring: Mutex<(VecDeque<Message>, u64)>,
}

impl Channel {
    /// An empty channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `m` (`notify_remote_via_evtchn`).
    pub fn send(&self, m: Message) {
        let mut r = self.ring.lock();
        if let Message::Fence { seq } = m {
            r.1 = r.1.max(seq);
        }
        r.0.push_back(m);
    }

    /// Takes the oldest message.
    pub fn recv(&self) -> Option<Message> {
        self.ring.lock().0.pop_front()
    }

    /// Whether fence `seq` has been signalled.
    pub fn signalled(&self, seq: u64) -> bool {
        self.ring.lock().1 >= seq
    }
}
