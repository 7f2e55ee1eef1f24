//! Fields a filter adds to a response by name and value, kept beside the header map instead of
//! hashed into it: the HTTP/1 writer puts them after the map's own, in place of any field of the
//! same name there; everything else that reads the map gets them moved in first.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Fields set on a response, each name once, in the order first set.
///
/// Inserting a field into an [`http::HeaderMap`] hashes its name, which for the long custom
/// names of rate-limit and identity fields costs as much as writing them out; a response
/// that gains six such fields on every request pays for it six times. A filter that only adds
/// fields sets them here ([`RequestCtx::response_fields`](crate::RequestCtx::response_fields)),
/// and the map sees them only where something reads it.
#[derive(Debug, Default)]
pub struct AddedFields {
    fields: Room,
    /// One bit for each length (modulo 64) of the names set: a name whose bit is clear is not
    /// among them, found without comparing it with each.
    lengths: u64,
}

/// Room for fields kept by a worker between responses: most responses' fields are set by
/// one filter, so one spare serves them in turn, and a response does not allocate.
type Room = Vec<(HeaderName, HeaderValue)>;

thread_local! {
    /// This worker's spare [`Room`] (empty when a response in flight holds it).
    static SPARE_ROOM: std::cell::Cell<Room> = const { std::cell::Cell::new(Vec::new()) };
}

/// The bit of [`AddedFields::lengths`] of a name's text.
fn length_bit(text: &str) -> u64 {
    1 << (text.len() % 64)
}

impl AddedFields {
    /// Room for this many fields is made at the first one (the rate-limit fields are six).
    const FIRST_ROOM: usize = 8;

    /// Sets `name` to `value`: it replaces a field of that name set here before, and, when
    /// written, any the response's map has.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        let text = name.as_str();
        let bit = length_bit(text);
        if self.lengths & bit != 0 {
            if let Some(field) = self.fields.iter_mut().find(|(set, _)| set.as_str() == text) {
                field.1 = value;
                return;
            }
        }
        if self.fields.capacity() == 0 {
            self.fields = SPARE_ROOM.try_with(std::cell::Cell::take).unwrap_or_default();
            self.fields.reserve(Self::FIRST_ROOM);
        }
        self.lengths |= bit;
        self.fields.push((name, value));
    }

    /// No field is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A field named `name` is set.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// The value set for `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        let text = name.as_str();
        if self.lengths & length_bit(text) == 0 {
            return None;
        }
        self.fields.iter().find(|(set, _)| set.as_str() == text).map(|(_, value)| value)
    }

    /// The fields, in the order first set.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.fields.iter().map(|(name, value)| (name, value))
    }

    /// Moves every field into `headers`, each replacing the map's fields of its name; none is
    /// left here.
    pub fn move_into(&mut self, headers: &mut HeaderMap) {
        self.lengths = 0;
        for (name, value) in self.fields.drain(..) {
            headers.insert(name, value);
        }
    }

    /// Forgets every field (keeping the room).
    pub fn clear(&mut self) {
        self.lengths = 0;
        self.fields.clear();
    }
}

impl Drop for AddedFields {
    fn drop(&mut self) {
        let capacity = self.fields.capacity();
        if capacity == 0 || capacity > 4 * Self::FIRST_ROOM {
            return;
        }
        self.fields.clear();
        // Kept unless the worker has a spare already (or is ending: then it is freed).
        let _ = SPARE_ROOM.try_with(|spare| {
            let kept = spare.take();
            spare.set(if kept.capacity() == 0 { std::mem::take(&mut self.fields) } else { kept });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_set_again_keeps_its_place_and_takes_the_new_value() {
        let mut fields = AddedFields::default();
        fields.set(HeaderName::from_static("x-a"), HeaderValue::from_static("1"));
        fields.set(HeaderName::from_static("x-b"), HeaderValue::from_static("2"));
        fields.set(HeaderName::from_static("x-a"), HeaderValue::from_static("3"));
        let set: Vec<_> = fields.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(set, [("x-a", "3"), ("x-b", "2")]);
        assert!(fields.contains(&HeaderName::from_static("x-b")));
        assert!(!fields.contains(&HeaderName::from_static("x-c")));
        assert_eq!(fields.get(&HeaderName::from_static("x-a")).unwrap(), "3");
    }

    #[test]
    fn names_of_one_length_are_told_apart_by_their_text() {
        let mut fields = AddedFields::default();
        // 15 bytes each; 79 is 15 modulo 64.
        let long = "x-".to_string() + &"l".repeat(77);
        for name in ["ratelimit-limit", "ratelimit-reset", long.as_str()] {
            fields.set(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("1"));
        }
        fields.set(HeaderName::from_static("ratelimit-reset"), HeaderValue::from_static("2"));
        let set: Vec<_> = fields.iter().map(|(n, v)| (n.as_str().len(), v.to_str().unwrap())).collect();
        assert_eq!(set, [(15, "1"), (15, "2"), (79, "1")]);
        assert!(!fields.contains(&HeaderName::from_static("ratelimit-other")));
        assert!(!fields.contains(&http::header::CONTENT_TYPE));
        fields.clear();
        assert!(!fields.contains(&HeaderName::from_static("ratelimit-limit")));
    }

    #[test]
    fn a_response_done_with_leaves_its_room_to_the_next() {
        let mut first = AddedFields::default();
        first.set(HeaderName::from_static("x-a"), HeaderValue::from_static("1"));
        let room = first.fields.as_ptr();
        drop(first);
        let mut next = AddedFields::default();
        assert!(next.is_empty());
        next.set(HeaderName::from_static("x-b"), HeaderValue::from_static("2"));
        assert_eq!(next.fields.as_ptr(), room);
        assert_eq!(next.iter().count(), 1);
        // A third, while the second holds the room, makes its own.
        let mut third = AddedFields::default();
        third.set(HeaderName::from_static("x-c"), HeaderValue::from_static("3"));
        assert_ne!(third.fields.as_ptr(), room);
    }

    #[test]
    fn moved_fields_replace_every_field_of_their_name_in_the_map() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("upstream-1"));
        headers.append("x-a", HeaderValue::from_static("upstream-2"));
        headers.append("x-kept", HeaderValue::from_static("k"));
        let mut fields = AddedFields::default();
        fields.set(HeaderName::from_static("x-a"), HeaderValue::from_static("mine"));
        fields.set(HeaderName::from_static("x-new"), HeaderValue::from_static("n"));
        fields.move_into(&mut headers);
        assert!(fields.is_empty());
        assert_eq!(headers.get_all("x-a").iter().collect::<Vec<_>>(), ["mine"]);
        assert_eq!(headers["x-kept"], "k");
        assert_eq!(headers["x-new"], "n");
        assert_eq!(headers.len(), 3);
    }
}
