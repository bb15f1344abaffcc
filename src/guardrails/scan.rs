//! Checking one text against a set of rules: findings by character range,
//! then the rules' actions (mask in place, count, or the first block).

use aho_corasick::automaton::{Automaton, OverlappingState, StateID};
use aho_corasick::{Anchored, Input};

use super::{pii, Action, Direction, GuardSet, Guardrails, RuleKind};

/// A rule matched `start..end` (characters of the original text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Finding {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

/// How often each rule matched, by direction, for metrics and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub rule: usize,
    pub direction: Direction,
    pub count: u32,
}

/// What the rules did to one request and its response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub hits: Vec<Hit>,
    /// The rule that blocked, and where.
    pub blocked: Option<(usize, Direction)>,
}

impl Tally {
    pub fn add(&mut self, rule: usize, direction: Direction, count: u32) {
        match self
            .hits
            .iter_mut()
            .find(|h| h.rule == rule && h.direction == direction)
        {
            Some(h) => h.count = h.count.saturating_add(count),
            None => self.hits.push(Hit {
                rule,
                direction,
                count,
            }),
        }
    }
}

/// Buffers reused across checks of one stream or request.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    folded: String,
    shifts: Vec<(u32, u32)>,
    pii: Vec<(pii::PiiKind, usize, usize)>,
}

impl Guardrails {
    /// Every finding of `set`'s word and PII rules in `text`, by start.
    pub(super) fn findings(
        &self,
        text: &str,
        set: GuardSet,
        scratch: &mut Scratch,
        out: &mut Vec<Finding>,
    ) {
        out.clear();
        if set.is_empty() || text.is_empty() {
            return;
        }
        self.folder()
            .fold_into(text, &mut scratch.folded, &mut scratch.shifts);
        let (folded, shifts) = (&scratch.folded, &scratch.shifts);
        let char_at = |byte: usize| char_index(folded, shifts, byte);
        if let Some(ac) = &self.automaton {
            let words = self
                .rules
                .iter()
                .enumerate()
                .any(|(i, r)| set.contains(i) && matches!(r.kind, RuleKind::Words));
            if words {
                let input = Input::new(folded.as_str());
                let mut state = OverlappingState::start();
                // Unanchored overlapping search of a Standard automaton
                // cannot fail; an error would only end the scan early.
                while ac.try_find_overlapping(&input, &mut state).is_ok() {
                    let Some(m) = state.get_match() else {
                        break;
                    };
                    let rule = usize::from(self.pattern_rule[m.pattern().as_usize()]);
                    if set.contains(rule) {
                        out.push(Finding {
                            rule,
                            start: char_at(m.start()),
                            end: char_at(m.end()),
                        });
                    }
                }
            }
        }
        self.folded_pii(scratch, 0, set, out);
        out.sort_by_key(|f| (f.start, f.end));
    }

    /// The PII findings of `set` in the text `scratch` holds folded, with
    /// character positions offset by `base`.
    fn folded_pii(
        &self,
        scratch: &mut Scratch,
        base: usize,
        set: GuardSet,
        out: &mut Vec<Finding>,
    ) {
        for (i, r) in self.rules.iter().enumerate() {
            let RuleKind::Pii(kinds) = &r.kind else {
                continue;
            };
            if !set.contains(i) {
                continue;
            }
            scratch.pii.clear();
            pii::find(&scratch.folded, kinds, &mut scratch.pii);
            for &(_, s, e) in &scratch.pii {
                out.push(Finding {
                    rule: i,
                    start: base + char_index(&scratch.folded, &scratch.shifts, s),
                    end: base + char_index(&scratch.folded, &scratch.shifts, e),
                });
            }
        }
    }

    /// The automaton's start state, if there are word lists.
    pub(super) fn start_state(&self) -> Option<StateID> {
        self.automaton
            .as_ref()
            .and_then(|a| a.start_state(Anchored::No).ok())
    }

    /// Feeds one folded character to the automaton from state `sid`; the
    /// matches of `set` ending with it (it is character `index`) go to `out`.
    pub(super) fn feed_char(
        &self,
        sid: &mut StateID,
        folded: char,
        index: usize,
        set: GuardSet,
        out: &mut Vec<Finding>,
    ) {
        let Some(a) = &self.automaton else {
            return;
        };
        let mut buf = [0u8; 4];
        for &b in folded.encode_utf8(&mut buf).as_bytes() {
            *sid = a.next_state(Anchored::No, *sid, b);
        }
        if !a.is_match(*sid) {
            return;
        }
        for k in 0..a.match_len(*sid) {
            let pid = a.match_pattern(*sid, k).as_usize();
            let rule = usize::from(self.pattern_rule[pid]);
            if set.contains(rule) {
                let len = usize::from(self.pattern_chars[pid]);
                out.push(Finding {
                    rule,
                    start: (index + 1).saturating_sub(len),
                    end: index + 1,
                });
            }
        }
    }

    /// The PII findings of `set` in `text` (original characters), with
    /// character positions offset by `base`.
    pub(super) fn pii_findings(
        &self,
        text: &str,
        base: usize,
        set: GuardSet,
        scratch: &mut Scratch,
        out: &mut Vec<Finding>,
    ) {
        self.folder()
            .fold_into(text, &mut scratch.folded, &mut scratch.shifts);
        self.folded_pii(scratch, base, set, out);
    }

    /// Checks a whole text against `set` (rules of one direction): masks it
    /// in place, counts into `tally`, and returns the first blocking rule.
    pub fn check(
        &self,
        text: &mut String,
        set: GuardSet,
        direction: Direction,
        tally: &mut Tally,
    ) -> Option<usize> {
        self.check_masked(text, set, direction, tally).0
    }

    /// `check`, also saying whether the text was masked.
    pub fn check_masked(
        &self,
        text: &mut String,
        set: GuardSet,
        direction: Direction,
        tally: &mut Tally,
    ) -> (Option<usize>, bool) {
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        self.findings(text, set, &mut scratch, &mut found);
        let (blocked, masked) = self.act(text, &found, usize::MAX, direction, tally);
        let changed = masked.is_some();
        if let Some(m) = masked {
            *text = m;
        }
        (blocked.map(|(rule, _)| rule), changed)
    }

    /// Applies the actions of the findings that start before `upto`: counts
    /// them, returns the first block (rule and its start) and the text with
    /// the masks applied (if any applied).
    pub(super) fn act(
        &self,
        text: &str,
        found: &[Finding],
        upto: usize,
        direction: Direction,
        tally: &mut Tally,
    ) -> (Option<(usize, usize)>, Option<String>) {
        let mut masks = Vec::new();
        let blocked = self.act_ranges(found, upto, direction, tally, &mut masks);
        let masked = (!masks.is_empty()).then(|| mask_chars(text, &masks));
        (blocked, masked)
    }

    /// `act` without the text: the ranges to mask go to `masks`.
    pub(super) fn act_ranges(
        &self,
        found: &[Finding],
        upto: usize,
        direction: Direction,
        tally: &mut Tally,
        masks: &mut Vec<(usize, usize)>,
    ) -> Option<(usize, usize)> {
        let mut blocked = None;
        for f in found.iter().filter(|f| f.start < upto) {
            tally.add(f.rule, direction, 1);
            match self.rules[f.rule].action {
                Action::Block => {
                    if blocked.is_none() {
                        blocked = Some((f.rule, f.start));
                        tally.blocked = Some((f.rule, direction));
                    }
                }
                Action::Mask => masks.push((f.start, f.end)),
                Action::Log => {}
            }
        }
        blocked
    }
}

/// Folded byte offset → character index: from the last shift before it,
/// one character per character.
fn char_index(folded: &str, shifts: &[(u32, u32)], byte: usize) -> usize {
    let j = shifts.partition_point(|s| s.0 as usize <= byte);
    let (from, base) = match j {
        0 => (0, 0),
        _ => (shifts[j - 1].0 as usize, shifts[j - 1].1 as usize),
    };
    base + folded.get(from..byte).map_or(0, |t| t.chars().count())
}

/// `text` with every character in `ranges` (sorted by start) replaced by `*`.
pub(super) fn mask_chars(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut r = 0;
    for (i, c) in text.chars().enumerate() {
        while r < ranges.len() && ranges[r].1 <= i {
            r += 1;
        }
        let inside = ranges[r..]
            .iter()
            .take_while(|(s, _)| *s <= i)
            .any(|(_, e)| i < *e);
        out.push(if inside { '*' } else { c });
    }
    out
}
