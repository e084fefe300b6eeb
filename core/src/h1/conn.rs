//! The HTTP/1.1 connection state machine: reading, writing and keep-alive.

use bytes::Bytes;

use super::{Config, Event, ResponseHead};
use crate::UsageError;

/// One HTTP/1.1 server connection. See the [module docs](super) for the call
/// order.
#[derive(Debug)]
pub struct Connection {
    config: Config,
}

impl Connection {
    /// A new connection, waiting for its first request.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Sets the value of the `Date` header (an IMF-fixdate, RFC 9110 §5.6.7)
    /// used by later responses. The driver refreshes it once a second.
    pub fn set_date(&mut self, date: Bytes) {
        let _ = date;
        todo!()
    }

    /// Feeds bytes read from the peer.
    pub fn handle_bytes(&mut self, data: &[u8]) {
        let _ = data;
        todo!()
    }

    /// Tells the connection that the peer closed its sending side.
    pub fn handle_eof(&mut self) {
        todo!()
    }

    /// The next event. Level-triggered; see [`Event`].
    pub fn poll_event(&mut self) -> Event {
        todo!()
    }

    /// Queues `100 Continue` if the current request sent
    /// `Expect: 100-continue`, no response has started and none was sent yet.
    /// Returns whether it was queued. Call it when the application first asks
    /// for the body.
    pub fn send_continue(&mut self) -> bool {
        todo!()
    }

    /// Queues an informational (1xx, not 101) response such as 103.
    pub fn send_informational(&mut self, head: ResponseHead) -> Result<(), UsageError> {
        let _ = head;
        todo!()
    }

    /// Queues the response head for the current request.
    pub fn send_response(&mut self, head: ResponseHead) -> Result<(), UsageError> {
        let _ = head;
        todo!()
    }

    /// Queues a piece of the response body.
    pub fn send_body(&mut self, data: Bytes) -> Result<(), UsageError> {
        let _ = data;
        todo!()
    }

    /// Ends the response body.
    pub fn send_end(&mut self) -> Result<(), UsageError> {
        todo!()
    }

    /// Moves every pending output segment, in order, into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        let _ = out;
        todo!()
    }

    /// Whether output is waiting for [`Self::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        todo!()
    }

    /// After a complete response, readies the connection for the next request.
    pub fn start_next_cycle(&mut self) -> Result<(), UsageError> {
        todo!()
    }

    /// Whether the connection may serve another request after the current one.
    pub fn is_keep_alive(&self) -> bool {
        todo!()
    }

    /// Makes the connection close after the current response.
    pub fn close_after_response(&mut self) {
        todo!()
    }

    /// Whether a response head was sent for the current request.
    pub fn response_started(&self) -> bool {
        todo!()
    }

    /// Takes the bytes received but not parsed (after an accepted upgrade).
    pub fn take_buffered(&mut self) -> Bytes {
        todo!()
    }
}
