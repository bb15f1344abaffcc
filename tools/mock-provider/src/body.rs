//! Response bodies: a plain full body (sent with Content-Length), a scripted
//! event stream (sent chunked) that implements the streaming knobs (delay
//! between events, re-framing into fixed-size body frames, compression,
//! aborting or stalling after N events), a full body cut short by a fault
//! knob, and a wrapper that tells the connection when a response is over.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;

use crate::encoding::StreamEncoder;

pub enum Body {
    Full(Option<Bytes>),
    Stream(Box<EventStream>),
    Cut(Box<CutBody>),
    /// `_done` is dropped with the body, i.e. once hyper has written the
    /// whole response (or given up on it).
    Tracked {
        body: Box<Body>,
        _done: oneshot::Sender<()>,
    },
}

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        if b.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(b))
        }
    }

    pub fn empty() -> Body {
        Body::Full(None)
    }
}

/// How a stream of pre-rendered events is written to the socket.
#[derive(Debug, Clone, Default)]
pub struct StreamOpts {
    /// Sleep between two consecutive events.
    pub delay: Option<Duration>,
    /// Re-frame the byte stream into body frames of exactly this many bytes.
    pub split_bytes: Option<usize>,
    /// After this many events, abort the connection (no terminating chunk).
    pub reset_after: Option<usize>,
    /// After this many events, send nothing more but keep the connection.
    pub stall_after: Option<usize>,
    /// After this many events, end the body cleanly (the rest is dropped).
    pub end_after: Option<usize>,
}

/// What happens once a stream or a cut body reaches its cut point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CutEnd {
    /// Drop the connection (hyper closes it on a body error).
    Reset,
    /// Send nothing more and never finish; the connection stays open until
    /// the client leaves or the server stops.
    Stall,
}

/// A non-stream body of which only `head` is sent (under the full body's
/// Content-Length, set by the caller) before `end`.
pub struct CutBody {
    head: Option<Bytes>,
    end: CutEnd,
    flushed: bool,
}

impl CutBody {
    pub fn new(head: Bytes, end: CutEnd) -> CutBody {
        CutBody {
            head: (!head.is_empty()).then_some(head),
            end,
            flushed: false,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if !self.flushed {
            // Give hyper one turn to flush the head (and the bytes so far).
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.end {
            CutEnd::Reset => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "x-mock-reset-mid-body: aborting the response",
            )))),
            // Never woken again: the task parks until the connection goes away.
            CutEnd::Stall => Poll::Pending,
        }
    }
}

pub struct EventStream {
    events: std::vec::IntoIter<Bytes>,
    opts: StreamOpts,
    emitted: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    buf: BytesMut,
    /// Return `Pending` once (after waking ourselves) before producing the next
    /// frame, so hyper flushes every frame as its own write.
    yield_next: bool,
    cut_flushed: bool,
    encoder: Option<StreamEncoder>,
    done: bool,
}

impl EventStream {
    pub fn new(events: Vec<Bytes>, opts: StreamOpts) -> Self {
        EventStream {
            events: events.into_iter(),
            opts,
            emitted: 0,
            sleep: None,
            buf: BytesMut::new(),
            yield_next: false,
            cut_flushed: false,
            encoder: None,
            done: false,
        }
    }

    /// Compress the stream from here on (set before the first poll).
    pub fn set_encoder(&mut self, encoder: StreamEncoder) {
        self.encoder = Some(encoder);
    }

    /// The cut point reached, if any (a reset wins over a stall at the same point).
    fn cut(&self) -> Option<CutEnd> {
        if self.opts.reset_after.is_some_and(|r| self.emitted >= r) {
            Some(CutEnd::Reset)
        } else if self.opts.stall_after.is_some_and(|s| self.emitted >= s) {
            Some(CutEnd::Stall)
        } else {
            None
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.yield_next {
                self.yield_next = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if let Some(n) = self.opts.split_bytes {
                if self.buf.len() >= n {
                    let frame = self.buf.split_to(n).freeze();
                    self.yield_next = true;
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
            }
            if let Some(end) = self.cut() {
                if !self.buf.is_empty() {
                    let frame = self.buf.split().freeze();
                    self.yield_next = true;
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if !self.cut_flushed {
                    // Give hyper one turn to flush what was written so far.
                    self.cut_flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                if end == CutEnd::Stall {
                    // Never woken again: the task parks until the connection goes away.
                    return Poll::Pending;
                }
                // hyper drops the connection on a body error: the peer sees the
                // stream end without the terminating chunk.
                self.done = true;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "x-mock-reset-after: aborting the stream",
                ))));
            }
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            let ended = self.opts.end_after.is_some_and(|n| self.emitted >= n);
            match if ended { None } else { self.events.next() } {
                Some(ev) => {
                    self.emitted += 1;
                    if let Some(d) = self.opts.delay {
                        if self.events.len() > 0 {
                            self.sleep = Some(Box::pin(tokio::time::sleep(d)));
                        }
                    }
                    let ev = match self.encoder.as_mut().map(|e| e.encode(&ev)) {
                        None => ev,
                        Some(Ok(compressed)) => compressed,
                        Some(Err(e)) => {
                            self.done = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    if self.opts.split_bytes.is_some() {
                        self.buf.extend_from_slice(&ev);
                        continue;
                    }
                    if ev.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(ev))));
                }
                None => {
                    if self.opts.reset_after.is_some() {
                        // reset_after >= number of events: abort after the last one.
                        self.opts.reset_after = Some(self.emitted);
                        continue;
                    }
                    if self.opts.stall_after.is_some() {
                        self.opts.stall_after = Some(self.emitted);
                        continue;
                    }
                    if let Some(encoder) = self.encoder.take() {
                        // The compressed stream's trailer, framed like any other bytes.
                        match encoder.finish() {
                            Ok(tail) if self.opts.split_bytes.is_some() => {
                                self.buf.extend_from_slice(&tail);
                                continue;
                            }
                            Ok(tail) if !tail.is_empty() => {
                                return Poll::Ready(Some(Ok(Frame::data(tail))));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                self.done = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                    }
                    self.done = true;
                    if !self.buf.is_empty() {
                        let frame = self.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => s.poll_next(cx),
            Body::Cut(c) => c.poll_next(cx),
            Body::Tracked { body, .. } => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.done,
            Body::Cut(_) => false,
            Body::Tracked { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            // Unknown: hyper then frames by the Content-Length header given.
            Body::Stream(_) | Body::Cut(_) => SizeHint::default(),
            Body::Tracked { body, .. } => body.size_hint(),
        }
    }
}
