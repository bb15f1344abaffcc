//! Where in the request body a value sits, as Anthropic writes it in error
//! messages (`messages.0.content.1.source`). Built on the stack while
//! walking the body; rendered to a string only when an error needs it.

#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
pub(super) struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    segment: Segment<'a>,
}

impl<'a> Loc<'a> {
    /// A top-level field.
    pub(super) fn field(key: &'a str) -> Self {
        Self {
            parent: None,
            segment: Segment::Key(key),
        }
    }

    pub(super) fn key<'b>(&'b self, key: &'b str) -> Loc<'b> {
        Loc {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    pub(super) fn index(&self, index: usize) -> Loc<'_> {
        Loc {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    /// The dotted path, e.g. `messages.0.content.1.source`.
    pub(super) fn path(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(loc) = at {
            segments.push(loc.segment);
            at = loc.parent;
        }
        let mut out = String::new();
        for (i, s) in segments.iter().rev().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match s {
                Segment::Key(k) => out.push_str(k),
                Segment::Index(n) => out.push_str(&n.to_string()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dotted_paths() {
        let messages = Loc::field("messages");
        let m = messages.index(0);
        let content = m.key("content");
        let block = content.index(12);
        assert_eq!(block.key("source").path(), "messages.0.content.12.source");
        assert_eq!(Loc::field("model").path(), "model");
    }
}
