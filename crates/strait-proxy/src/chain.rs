//! Running filter phases: the listener chain and the route chain of one request, in the
//! order `strait_http::filter` documents, and bodies passed through body filters.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{request, response, HeaderMap};
use http_body::{Body, Frame, SizeHint};
use smallvec::SmallVec;
use strait_http::filter::UpstreamTarget;
use strait_http::{BodyFilter, Filter, FilterFactory, Flow, LocalResponse, Phases, Reason, RequestCtx};

use crate::body::BodyError;

/// A configured filter and its place in a chain.
#[derive(Debug, Clone)]
pub struct Scoped {
    factory: Arc<dyn FilterFactory>,
    priority: i32,
}

impl Scoped {
    /// `factory` at chain priority `priority` (higher runs first).
    pub fn new(factory: Arc<dyn FilterFactory>, priority: i32) -> Scoped {
        Scoped { factory, priority }
    }

    /// The plugin's name.
    pub fn name(&self) -> &'static str {
        self.factory.name()
    }

    /// The filter's factory.
    pub fn factory(&self) -> &Arc<dyn FilterFactory> {
        &self.factory
    }

    /// This request's instance.
    fn member(&self) -> Member {
        Member {
            phases: self.factory.phases(),
            name: self.factory.name(),
            priority: self.priority,
            filter: self.factory.create(),
            from_consumer: false,
            replaced: None,
        }
    }
}

/// The filters of one chain (a listener's, a route's, a consumer's), compiled once per snapshot.
#[derive(Debug, Default, Clone)]
pub struct FilterList {
    entries: Vec<Scoped>,
    phases: Phases,
}

impl FilterList {
    /// These filters in the order they run: higher priority first, equal priorities in the
    /// order given.
    pub fn ordered(mut entries: Vec<Scoped>) -> FilterList {
        entries.sort_by_key(|s| std::cmp::Reverse(s.priority));
        let phases = entries.iter().fold(Phases::NONE, |all, s| all | s.factory.phases());
        FilterList { entries, phases }
    }

    /// Whether the list has no filter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The filters in the order they run.
    pub fn entries(&self) -> &[Scoped] {
        &self.entries
    }
}

/// One filter instance and the phases it takes part in.
struct Member {
    phases: Phases,
    /// The plugin's name: a consumer's filter of the same name replaces it.
    name: &'static str,
    priority: i32,
    filter: Box<dyn Filter>,
    /// It came from a consumer's filters.
    from_consumer: bool,
    /// The route chain's member of the same name it took the place of.
    replaced: Option<Box<Member>>,
}

/// The filter instances of one request: the listener chain, then the route chain.
#[derive(Default)]
pub(crate) struct Chain {
    /// Inline for the usual few filters: a chain allocates no list of its own.
    members: SmallVec<[Member; 4]>,
    phases: Phases,
    /// The consumer whose filters are in (even if it had none), and whether it was a stand-in
    /// (anonymous) consumer, whose filters give way if a later filter identifies a real one.
    applied: Option<(Arc<str>, bool)>,
}

/// The filters of each consumer, by username.
pub type ConsumerFilters = HashMap<Arc<str>, FilterList>;

/// Where a route finds a consumer's filters: the route's own map first (consumers with filters
/// on this route or its cluster), then the consumers' lists everywhere else.
#[derive(Clone, Copy)]
pub(crate) struct ConsumerLists<'a> {
    /// The route's map, when the route or its cluster has filters for some consumers.
    pub route: Option<&'a ConsumerFilters>,
    /// Every consumer's own filters.
    pub all: &'a ConsumerFilters,
}

impl ConsumerLists<'_> {
    /// Whether no consumer has filters here.
    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty() && self.route.is_none_or(HashMap::is_empty)
    }

    /// The filters of the consumer named `username` on this route.
    fn get(&self, username: &str) -> Option<&FilterList> {
        self.route.and_then(|route| route.get(username)).or_else(|| self.all.get(username))
    }
}

impl Chain {
    /// Creates this request's instances of `list` and appends them (the listener list first,
    /// then the route's). An empty list costs nothing.
    pub(crate) fn extend(&mut self, list: &FilterList) {
        if list.is_empty() {
            return;
        }
        self.phases |= list.phases;
        self.members.extend(list.entries.iter().map(Scoped::member));
    }

    /// Whether the request has no filter at all.
    pub(crate) fn members_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of filter instances (the start index of the next list appended).
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether any member takes part in `phase`.
    pub(crate) fn has(&self, phase: Phases) -> bool {
        self.phases.contains(phase)
    }

    /// Request-header phase of the members from index `from` on; a filter's answer stops it.
    /// On the route chain (`consumers` given), once a filter has identified the consumer (here
    /// or in the listener chain), the consumer's filters take the place of the remaining
    /// members of the same name, or join them by priority.
    pub(crate) async fn request_headers(
        &mut self,
        from: usize,
        request: &mut request::Parts,
        ctx: &mut RequestCtx,
        consumers: Option<ConsumerLists<'_>>,
    ) -> Option<LocalResponse> {
        self.apply_consumer(from, ctx, consumers);
        if !self.has(Phases::REQUEST_HEADERS) {
            return None;
        }
        let mut index = from;
        while let Some(member) = self.members.get_mut(index) {
            index += 1;
            if !member.phases.contains(Phases::REQUEST_HEADERS) {
                continue;
            }
            if let Flow::Respond(answer) = member.filter.request_headers(request, ctx).resolve().await {
                return Some(*answer);
            }
            self.apply_consumer(index, ctx, consumers);
        }
        None
    }

    /// Puts the identified consumer's filters into the chain from index `at` on, once. A
    /// filter of a name that already ran (before the consumer was known) is not run again.
    fn apply_consumer(&mut self, at: usize, ctx: &RequestCtx, consumers: Option<ConsumerLists<'_>>) {
        let Some(consumers) = consumers else { return };
        if consumers.is_empty() {
            return;
        }
        let Some(consumer) = ctx.consumer.as_ref() else { return };
        match &self.applied {
            Some((name, _)) if *name == consumer.username => return,
            Some((_, false)) => return,
            // The anonymous consumer's filters that have not run give way to the real one's.
            Some((_, true)) => self.undo_consumer(at),
            None => {}
        }
        self.applied = Some((consumer.username.clone(), consumer.credential.is_none()));
        let Some(list) = consumers.get(&consumer.username) else { return };
        for entry in &list.entries {
            if self.members[..at].iter().any(|m| m.name == entry.name()) {
                continue;
            }
            let mut member = entry.member();
            member.from_consumer = true;
            if let Some(slot) = self.members[at..].iter_mut().find(|m| m.name == member.name) {
                let original = std::mem::replace(slot, member);
                // A consumer's member it replaces goes for good; a route member comes back on undo.
                slot.replaced = if original.from_consumer { original.replaced } else { Some(Box::new(original)) };
                continue;
            }
            let later = self.members[at..].iter().position(|m| m.priority < member.priority);
            let position = later.map_or(self.members.len(), |p| at + p);
            self.members.insert(position, member);
        }
        self.phases |= list.phases;
    }

    /// Takes the consumer's filters out of the chain from index `at` on: the route members they
    /// replaced come back, the ones they added go.
    fn undo_consumer(&mut self, at: usize) {
        let mut index = at;
        while index < self.members.len() {
            if !self.members[index].from_consumer {
                index += 1;
                continue;
            }
            match self.members[index].replaced.take() {
                Some(original) => {
                    self.members[index] = *original;
                    index += 1;
                }
                None => {
                    self.members.remove(index);
                }
            }
        }
    }

    /// The request-body filters of every member, in request order.
    pub(crate) fn request_body(&mut self, ctx: &RequestCtx) -> Vec<Box<dyn BodyFilter>> {
        if !self.has(Phases::REQUEST_BODY) {
            return Vec::new();
        }
        let members = self.members.iter_mut().filter(|m| m.phases.contains(Phases::REQUEST_BODY));
        members.filter_map(|m| m.filter.request_body(ctx)).collect()
    }

    /// Upstream-request phase for one attempt; a filter's answer stops it.
    pub(crate) async fn upstream_request(
        &mut self,
        request: &mut request::Parts,
        target: UpstreamTarget<'_>,
        ctx: &mut RequestCtx,
    ) -> Option<LocalResponse> {
        if !self.has(Phases::UPSTREAM_REQUEST) {
            return None;
        }
        for member in self.members.iter_mut().filter(|m| m.phases.contains(Phases::UPSTREAM_REQUEST)) {
            if let Flow::Respond(answer) = member.filter.upstream_request(request, target, ctx).resolve().await {
                return Some(*answer);
            }
        }
        None
    }

    /// Response-header phase, last member first. Each filter finds the fields the ones before
    /// it set in `ctx.response_fields` moved into the map; the last one's stay there.
    pub(crate) async fn response_headers(&mut self, response: &mut response::Parts, ctx: &mut RequestCtx) {
        if !self.has(Phases::RESPONSE_HEADERS) {
            return;
        }
        for member in self.members.iter_mut().rev().filter(|m| m.phases.contains(Phases::RESPONSE_HEADERS)) {
            if !ctx.response_fields.is_empty() {
                ctx.response_fields.move_into(&mut response.headers);
            }
            member.filter.response_headers(response, ctx).resolve().await;
        }
    }

    /// The response-body filters of every member, in response order (last member first).
    pub(crate) fn response_body(&mut self, response: &response::Parts, ctx: &RequestCtx) -> Vec<Box<dyn BodyFilter>> {
        if !self.has(Phases::RESPONSE_BODY) {
            return Vec::new();
        }
        let members = self.members.iter_mut().rev().filter(|m| m.phases.contains(Phases::RESPONSE_BODY));
        members.filter_map(|m| m.filter.response_body(response, ctx)).collect()
    }

    /// Local-reply phase, last member first.
    pub(crate) async fn local_reply(&mut self, reply: &mut LocalResponse, ctx: &mut RequestCtx) {
        if !self.has(Phases::LOCAL_REPLY) {
            return;
        }
        for member in self.members.iter_mut().rev().filter(|m| m.phases.contains(Phases::LOCAL_REPLY)) {
            member.filter.local_reply(reply, ctx).resolve().await;
        }
    }

    /// Log phase, in request order.
    pub(crate) async fn log(&mut self, ctx: &RequestCtx, error: Option<Reason>) {
        if !self.has(Phases::LOG) {
            return;
        }
        for member in self.members.iter_mut().filter(|m| m.phases.contains(Phases::LOG)) {
            member.filter.log(ctx, error).resolve().await;
        }
    }
}

/// Passes one chunk through `filters` in order; hands the filters back with the result.
pub(crate) async fn filter_chunk(
    filters: Vec<Box<dyn BodyFilter>>,
    mut chunk: Bytes,
    end: bool,
) -> (Vec<Box<dyn BodyFilter>>, Result<Bytes, Reason>) {
    let mut done = Vec::with_capacity(filters.len());
    let mut failure = None;
    for filter in filters {
        if failure.is_some() {
            done.push(filter);
            continue;
        }
        let (filter, result) = filter.chunk(chunk, end).resolve().await;
        done.push(filter);
        match result {
            Ok(out) => chunk = out,
            Err(reason) => {
                failure = Some(reason);
                chunk = Bytes::new();
            }
        }
    }
    (done, failure.map_or(Ok(chunk), Err))
}

/// The future of one chunk through the request-body filters.
type ChunkFuture = Pin<Box<dyn Future<Output = (Vec<Box<dyn BodyFilter>>, Result<Bytes, Reason>)>>>;

/// A request body passed through request-body filters on its way upstream. Its length is
/// unknown (filters may change it), so it is sent chunked.
pub(crate) struct FilteredBody<B> {
    inner: B,
    state: FilterState,
    /// The inner body ended (its last chunk went, or goes, to the filters with `end`).
    inner_ended: bool,
    trailers: Option<HeaderMap>,
}

enum FilterState {
    Idle(Vec<Box<dyn BodyFilter>>),
    Busy(ChunkFuture),
    Done,
}

impl<B> FilteredBody<B> {
    /// `inner` through `filters` (at least one).
    pub(crate) fn new(inner: B, filters: Vec<Box<dyn BodyFilter>>) -> FilteredBody<B> {
        FilteredBody { inner, state: FilterState::Idle(filters), inner_ended: false, trailers: None }
    }
}

impl<B> Body for FilteredBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                FilterState::Done => return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t)))),
                FilterState::Busy(future) => {
                    let (filters, result) = match future.as_mut().poll(cx) {
                        Poll::Ready(done) => done,
                        Poll::Pending => return Poll::Pending,
                    };
                    this.state = if this.inner_ended { FilterState::Done } else { FilterState::Idle(filters) };
                    match result {
                        Err(reason) => {
                            this.state = FilterState::Done;
                            return Poll::Ready(Some(Err(BodyError(reason))));
                        }
                        Ok(bytes) if !bytes.is_empty() => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                        Ok(_) => {}
                    }
                }
                FilterState::Idle(_) => {
                    let (chunk, end) = match Pin::new(&mut this.inner).poll_frame(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) => {
                                let end = this.inner.is_end_stream();
                                (data, end)
                            }
                            Err(frame) => {
                                this.trailers = frame.into_trailers().ok();
                                continue;
                            }
                        },
                        Poll::Ready(None) => (Bytes::new(), true),
                    };
                    this.inner_ended = end;
                    let FilterState::Idle(filters) = std::mem::replace(&mut this.state, FilterState::Done) else {
                        unreachable!("state checked above")
                    };
                    this.state = FilterState::Busy(Box::pin(filter_chunk(filters, chunk, end)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, FilterState::Done) && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
