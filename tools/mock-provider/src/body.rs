//! Response bodies: a plain full body (sent with Content-Length) and a scripted
//! event stream (sent chunked) that implements the streaming knobs: delay between
//! events, re-framing into fixed-size body frames, and aborting after N events.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

pub enum Body {
    Full(Option<Bytes>),
    Stream(Box<EventStream>),
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
    reset_flushed: bool,
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
            reset_flushed: false,
            done: false,
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
            if self.opts.reset_after.is_some_and(|r| self.emitted >= r) {
                if !self.buf.is_empty() {
                    let frame = self.buf.split().freeze();
                    self.yield_next = true;
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if !self.reset_flushed {
                    // Give hyper one turn to flush what was written so far.
                    self.reset_flushed = true;
                    cx.waker().wake_by_ref();
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
            match self.events.next() {
                Some(ev) => {
                    self.emitted += 1;
                    if let Some(d) = self.opts.delay {
                        if self.events.len() > 0 {
                            self.sleep = Some(Box::pin(tokio::time::sleep(d)));
                        }
                    }
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

use std::future::Future;

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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}
