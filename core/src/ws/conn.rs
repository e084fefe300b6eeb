//! The WebSocket connection state machine (server role): reading frames,
//! reassembling messages, the close handshake, and writing frames.
//!
//! One reading machine, [`Reading`]: `Head` → `Payload` → `Head` ... until
//! `Closed` (the peer's close frame was reported) or `Failed` (an error
//! was). The message being reassembled is [`Message`]; the writing side is
//! only `close_sent`.

use std::mem;

use bytes::{Buf, Bytes, BytesMut};

use super::deflate::{Deflater, InflateError, Inflater};
use super::frame::{self, FrameHead, MAX_CONTROL_PAYLOAD, OpCode};
use super::utf8::Utf8Validator;
use super::{Config, Event, WsError, is_valid_close_code};
use crate::UsageError;

/// Payloads up to this size are copied into the shared output buffer; larger
/// ones become segments of their own, for vectored writes.
const COPY_MAX: usize = 2 * 1024;

/// Messages shorter than this are sent uncompressed even when
/// permessage-deflate was negotiated (RFC 7692 §6.1 allows it per
/// message): deflate saves almost nothing on them and costs more CPU than
/// the bytes it saves.
pub const MIN_COMPRESS_SIZE: usize = 64;

/// Receive buffer capacity reserved up front: many small frames.
const INITIAL_RECV: usize = 4 * 1024;

/// Most receive buffer space reserved ahead for a frame's payload, before
/// it arrives: large enough that big frames rarely regrow the buffer, small
/// enough that a lying header costs little.
const MAX_RESERVE_AHEAD: usize = 256 * 1024;

/// Longest close reason: a control payload (125) minus the code (RFC 6455
/// §5.5, §5.5.1).
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Reading side.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// Waiting for a frame header.
    Head,
    /// Reading the payload of `head`, `len` bytes, of which the first
    /// `unmasked` (already in the receive buffer) are unmasked.
    Payload {
        head: FrameHead,
        len: usize,
        unmasked: usize,
    },
    /// The peer's close frame was reported: nothing more is read.
    Closed,
    /// An error was reported: nothing more is read.
    Failed,
}

/// Type of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The data message being received.
#[derive(Debug, Clone, Copy)]
struct Message {
    kind: Kind,
    /// RSV1 was set on its first frame (RFC 7692 §6.1).
    compressed: bool,
    /// It has more than one frame: the payload goes through the assembly
    /// buffer.
    fragmented: bool,
    /// Payload bytes so far (uncompressed messages).
    size: usize,
}

/// Output waiting for the driver.
#[derive(Debug, Default)]
struct Output {
    /// Bytes after every segment, not yet frozen. Reused: once the driver
    /// drops the segments split from it, `reserve` reclaims the space.
    buf: BytesMut,
    /// Frozen segments, oldest first.
    segments: Vec<Bytes>,
    /// Total length of `segments`.
    segment_bytes: usize,
}

impl Output {
    fn len(&self) -> usize {
        self.buf.len() + self.segment_bytes
    }

    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.segment_bytes += b.len();
            self.segments.push(b);
        }
    }

    fn push_segment(&mut self, data: Bytes) {
        self.seal();
        self.segment_bytes += data.len();
        self.segments.push(data);
    }

    fn push_slice(&mut self, data: &[u8]) {
        if data.len() <= COPY_MAX {
            self.buf.extend_from_slice(data);
        } else {
            self.push_segment(Bytes::copy_from_slice(data));
        }
    }

    fn push_bytes(&mut self, data: Bytes) {
        if data.len() <= COPY_MAX {
            self.buf.extend_from_slice(&data);
        } else {
            self.push_segment(data);
        }
    }

    fn drain_into(&mut self, out: &mut Vec<Bytes>) {
        self.seal();
        out.append(&mut self.segments);
        self.segment_bytes = 0;
    }
}

/// One WebSocket connection, server role. See the [module docs](super) for
/// the call order.
///
/// Parsing happens in [`Self::poll_event`]; [`Self::handle_bytes`] only
/// buffers. Output accumulates until [`Self::poll_transmit`].
#[derive(Debug)]
pub struct Connection {
    config: Config,
    /// Received bytes not yet consumed; the payload of the current frame is
    /// unmasked in place here.
    recv: BytesMut,
    eof: bool,
    reading: Reading,
    message: Option<Message>,
    /// Payload of a fragmented or compressed message, reassembled.
    assembly: Vec<u8>,
    /// Fail-fast validation of a text message still arriving.
    utf8: Utf8Validator,
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
    /// Reused buffer for compressed outgoing messages.
    scratch: Vec<u8>,
    close_sent: bool,
    close_received: bool,
    out: Output,
}

impl Connection {
    /// A connection right after the `101` response.
    pub fn new(config: Config) -> Self {
        let inflater = config.deflate.as_ref().map(Inflater::new);
        let deflater = config.deflate.as_ref().map(Deflater::new);
        Self {
            config,
            recv: BytesMut::with_capacity(INITIAL_RECV),
            eof: false,
            reading: Reading::Head,
            message: None,
            assembly: Vec::new(),
            utf8: Utf8Validator::default(),
            inflater,
            deflater,
            scratch: Vec::new(),
            close_sent: false,
            close_received: false,
            out: Output::default(),
        }
    }

    /// Feeds bytes read from the peer. Bytes after the peer's close frame or
    /// after an error are dropped (RFC 6455 §5.5.1).
    pub fn handle_bytes(&mut self, data: &[u8]) {
        if matches!(self.reading, Reading::Closed | Reading::Failed) {
            return;
        }
        self.recv.extend_from_slice(data);
    }

    /// Tells the connection that the peer closed its sending side.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The next event. See [`Event`] for which ones are level-triggered.
    pub fn poll_event(&mut self) -> Event {
        loop {
            match self.reading {
                Reading::Closed | Reading::Failed => return Event::Closed,
                Reading::Head => match frame::parse_head(&self.recv) {
                    Err(e) => return self.fail(e),
                    Ok(None) if self.eof => return self.fail(WsError::Incomplete),
                    Ok(None) => return Event::NeedData,
                    Ok(Some((head, head_len))) => {
                        let len = match self.start_frame(&head) {
                            Ok(len) => len,
                            Err(e) => return self.fail(e),
                        };
                        self.recv.advance(head_len);
                        // Room for the frame now rather than regrowing as
                        // it arrives, up to a cap: a header alone must not
                        // make us allocate megabytes.
                        if let Some(missing) = len.checked_sub(self.recv.len()) {
                            self.recv.reserve(missing.min(MAX_RESERVE_AHEAD));
                        }
                        self.reading = Reading::Payload {
                            head,
                            len,
                            unmasked: 0,
                        };
                    }
                },
                Reading::Payload {
                    head,
                    len,
                    unmasked,
                } => {
                    let avail = self.recv.len().min(len);
                    if avail > unmasked {
                        let validate =
                            (avail < len || !head.fin) && self.validates_as_it_arrives(&head);
                        let fresh = &mut self.recv[unmasked..avail];
                        frame::apply_mask(fresh, head.mask, unmasked);
                        // Fail fast (RFC 6455 §8.1) on text still arriving.
                        // The last frame of a message, once whole, is
                        // validated with the whole message instead.
                        if validate && self.utf8.feed(fresh).is_err() {
                            return self.fail(WsError::InvalidUtf8);
                        }
                        self.reading = Reading::Payload {
                            head,
                            len,
                            unmasked: avail,
                        };
                    }
                    if avail < len {
                        if self.eof {
                            return self.fail(WsError::Incomplete);
                        }
                        return Event::NeedData;
                    }
                    let payload = self.recv.split_to(len);
                    self.reading = Reading::Head;
                    match self.end_frame(&head, payload) {
                        Ok(Some(event)) => return event,
                        Ok(None) => {}
                        Err(e) => return self.fail(e),
                    }
                }
            }
        }
    }

    /// Whether the payload of `head` is uncompressed text, validated as it
    /// arrives.
    fn validates_as_it_arrives(&self, head: &FrameHead) -> bool {
        !head.opcode.is_control()
            && self
                .message
                .is_some_and(|m| m.kind == Kind::Text && !m.compressed)
    }

    /// Checks a frame header against the connection state (RFC 6455 §5.4,
    /// RFC 7692 §6.1) and the limits; returns the payload length.
    fn start_frame(&mut self, head: &FrameHead) -> Result<usize, WsError> {
        let len = usize::try_from(head.len)
            .ok()
            .filter(|&l| l <= self.config.max_frame_size)
            .ok_or(WsError::TooBig)?;
        let kind = match head.opcode {
            OpCode::Text => Kind::Text,
            OpCode::Binary => Kind::Binary,
            OpCode::Continuation => {
                if head.rsv1 {
                    return Err(WsError::Protocol("rsv1 set on a continuation frame"));
                }
                let Some(msg) = &mut self.message else {
                    return Err(WsError::Protocol("continuation frame without a message"));
                };
                msg.fragmented = true;
                return self.count_message_bytes(len);
            }
            _ if head.rsv1 => return Err(WsError::Protocol("rsv1 set on a control frame")),
            _ => return Ok(len),
        };
        if self.message.is_some() {
            return Err(WsError::Protocol(
                "new data frame inside a fragmented message",
            ));
        }
        // RFC 6455 §5.2: RSV1 needs an extension that defines it.
        if head.rsv1 && self.inflater.is_none() {
            return Err(WsError::Protocol("rsv1 set without permessage-deflate"));
        }
        self.message = Some(Message {
            kind,
            compressed: head.rsv1,
            fragmented: !head.fin,
            size: 0,
        });
        self.utf8.reset();
        self.count_message_bytes(len)
    }

    /// Adds a frame to the size of an uncompressed message, failing as soon
    /// as it would pass `max_message_size` (compressed messages are checked
    /// on their inflated size).
    fn count_message_bytes(&mut self, len: usize) -> Result<usize, WsError> {
        let max = self.config.max_message_size;
        if let Some(msg) = &mut self.message {
            if !msg.compressed {
                msg.size = msg
                    .size
                    .checked_add(len)
                    .filter(|&s| s <= max)
                    .ok_or(WsError::TooBig)?;
            }
        }
        Ok(len)
    }

    /// Handles a complete, unmasked frame.
    fn end_frame(&mut self, head: &FrameHead, payload: BytesMut) -> Result<Option<Event>, WsError> {
        match head.opcode {
            OpCode::Ping => {
                // RFC 6455 §5.5.2: answer with the same payload; nothing
                // follows our close frame.
                if !self.close_sent {
                    self.write_control(OpCode::Pong, &payload);
                }
                Ok(Some(Event::Ping(payload.freeze())))
            }
            OpCode::Pong => Ok(Some(Event::Pong(payload.freeze()))),
            OpCode::Close => self.receive_close(&payload).map(Some),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                self.end_data_frame(head.fin, payload)
            }
        }
    }

    /// Handles a data frame; yields the message after its last frame.
    fn end_data_frame(&mut self, fin: bool, payload: BytesMut) -> Result<Option<Event>, WsError> {
        let Some(msg) = self.message else {
            return Err(WsError::Protocol("data frame without a message"));
        };
        if msg.compressed {
            let Some(inflater) = &mut self.inflater else {
                return Err(WsError::Protocol("rsv1 set without permessage-deflate"));
            };
            let max = self.config.max_message_size;
            let before = self.assembly.len();
            let mut r = inflater.inflate(&payload, &mut self.assembly, max);
            if fin && r.is_ok() {
                r = inflater.finish(&mut self.assembly, max);
            }
            r.map_err(|e| match e {
                InflateError::TooBig => WsError::TooBig,
                InflateError::Corrupt => WsError::Protocol("invalid deflate data"),
            })?;
            if !fin && msg.kind == Kind::Text && self.utf8.feed(&self.assembly[before..]).is_err() {
                return Err(WsError::InvalidUtf8);
            }
        } else if !msg.fragmented {
            // The common case: a whole message in one frame, no copy.
            self.message = None;
            return Ok(Some(match msg.kind {
                Kind::Text => Event::Text(
                    std::str::from_utf8(&payload)
                        .map_err(|_| WsError::InvalidUtf8)?
                        .to_owned(),
                ),
                Kind::Binary => Event::Binary(payload.freeze()),
            }));
        } else {
            self.assembly.extend_from_slice(&payload);
        }
        if !fin {
            return Ok(None);
        }
        self.message = None;
        let data = mem::take(&mut self.assembly);
        Ok(Some(match msg.kind {
            Kind::Text => Event::Text(String::from_utf8(data).map_err(|_| WsError::InvalidUtf8)?),
            Kind::Binary => Event::Binary(Bytes::from(data)),
        }))
    }

    /// Handles the peer's close frame (RFC 6455 §5.5.1, §7.1.5, §7.4).
    fn receive_close(&mut self, payload: &[u8]) -> Result<Event, WsError> {
        let (code, reason) = match payload {
            [] => (1005, String::new()),
            [_] => return Err(WsError::Protocol("close frame with a 1-byte payload")),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return Err(WsError::Protocol("invalid close code"));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
                (code, reason.to_owned())
            }
        };
        self.close_received = true;
        if !self.close_sent {
            // Echo the code (RFC 6455 §5.5.1), 1000 when there was none.
            self.write_close(if code == 1005 { 1000 } else { code }, "");
        }
        self.reading = Reading::Closed;
        self.recv = BytesMut::new();
        self.message = None;
        Ok(Event::Close { code, reason })
    }

    /// Reports an error, queueing the close frame it calls for.
    pub(crate) fn fail(&mut self, e: WsError) -> Event {
        if e != WsError::Incomplete && !self.close_sent {
            self.write_close(e.close_code(), "");
        }
        self.reading = Reading::Failed;
        self.recv = BytesMut::new();
        self.message = None;
        self.assembly = Vec::new();
        Event::Error(e)
    }

    fn check_can_send(&self) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::InvalidState(
                "websocket close frame already sent",
            ));
        }
        Ok(())
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.check_can_send()?;
        self.write_message(OpCode::Text, text.as_bytes(), None);
        Ok(())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        self.write_message(OpCode::Binary, data, None);
        Ok(())
    }

    /// Queues a binary message given as `Bytes`: sent without a copy when it
    /// is large and not compressed.
    pub fn send_binary_bytes(&mut self, data: Bytes) -> Result<(), UsageError> {
        self.check_can_send()?;
        self.write_message(OpCode::Binary, &data, Some(&data));
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes, RFC 6455 §5.5).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::InvalidValue(format!(
                "ping payload of {} bytes, more than 125",
                data.len()
            )));
        }
        self.write_control(OpCode::Ping, data);
        Ok(())
    }

    /// Queues an unsolicited pong (RFC 6455 §5.5.3), e.g. as a heartbeat.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::InvalidValue(format!(
                "pong payload of {} bytes, more than 125",
                data.len()
            )));
        }
        self.write_control(OpCode::Pong, data);
        Ok(())
    }

    /// Queues our close frame (RFC 6455 §5.5.1). `code` must be one that may
    /// be sent (1000-1003, 1007-1014, 3000-4999) and `reason` at most 123
    /// bytes. Nothing can be sent after it; reading goes on until the peer's
    /// close frame.
    pub fn send_close(&mut self, code: u16, reason: &str) -> Result<(), UsageError> {
        self.check_can_send()?;
        if !is_valid_close_code(code) {
            return Err(UsageError::InvalidValue(format!(
                "close code {code} may not be sent"
            )));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(UsageError::InvalidValue(format!(
                "close reason of {} bytes, more than 123",
                reason.len()
            )));
        }
        self.write_close(code, reason);
        Ok(())
    }

    fn write_message(&mut self, opcode: OpCode, data: &[u8], owned: Option<&Bytes>) {
        if data.len() >= MIN_COMPRESS_SIZE {
            if let Some(deflater) = &mut self.deflater {
                if deflater.compress(data, &mut self.scratch) {
                    let len = self.scratch.len();
                    frame::write_head(&mut self.out.buf, true, true, opcode, len);
                    if len <= COPY_MAX {
                        self.out.buf.extend_from_slice(&self.scratch);
                    } else {
                        self.out
                            .push_segment(Bytes::from(mem::take(&mut self.scratch)));
                    }
                    return;
                }
            }
        }
        frame::write_head(&mut self.out.buf, true, false, opcode, data.len());
        match owned {
            Some(bytes) => self.out.push_bytes(bytes.clone()),
            None => self.out.push_slice(data),
        }
    }

    fn write_control(&mut self, opcode: OpCode, payload: &[u8]) {
        frame::write_head(&mut self.out.buf, true, false, opcode, payload.len());
        self.out.buf.extend_from_slice(payload);
    }

    fn write_close(&mut self, code: u16, reason: &str) {
        let buf = &mut self.out.buf;
        frame::write_head(buf, true, false, OpCode::Close, 2 + reason.len());
        buf.extend_from_slice(&code.to_be_bytes());
        buf.extend_from_slice(reason.as_bytes());
        self.close_sent = true;
    }

    /// Moves the pending output into `out`, in order, as segments to write
    /// (vectored) to the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        self.out.drain_into(out);
    }

    /// Whether output is waiting.
    pub fn has_transmit(&self) -> bool {
        self.out.len() > 0
    }

    /// Bytes waiting in the output, for backpressure.
    pub fn buffered_output(&self) -> usize {
        self.out.len()
    }

    /// The close handshake is complete (close frames sent and received), or
    /// the connection failed: once the output is written, the driver closes
    /// the TCP connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.reading, Reading::Failed) || (self.close_sent && self.close_received)
    }

    /// Whether our close frame is queued or sent.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer's close frame was received.
    pub fn close_received(&self) -> bool {
        self.close_received
    }
}
