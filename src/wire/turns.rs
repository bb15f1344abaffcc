//! Conversation turns for providers that want alternating user and
//! assistant turns of content blocks (Anthropic, Bedrock Converse).

/// One turn being assembled, of the edge's block type `B`.
pub struct Turn<B> {
    pub role: &'static str,
    pub blocks: Vec<B>,
}

/// Adds `blocks` as a turn of `role`, merged into the last turn when it
/// has the same role; nothing for no blocks.
pub fn push_turn<B>(turns: &mut Vec<Turn<B>>, role: &'static str, blocks: Vec<B>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

/// Puts the tool results of every user turn first (both APIs want them
/// right after the calls), keeping the order otherwise; and, when the
/// conversation starts with the assistant, a user turn holding
/// `placeholder` before it.
pub fn settle<B>(turns: &mut Vec<Turn<B>>, is_result: fn(&B) -> bool, placeholder: B) {
    for turn in turns.iter_mut().filter(|t| t.role == "user") {
        let (mut results, rest): (Vec<B>, Vec<B>) = std::mem::take(&mut turn.blocks)
            .into_iter()
            .partition(is_result);
        results.extend(rest);
        turn.blocks = results;
    }
    if turns.first().is_some_and(|t| t.role == "assistant") {
        turns.insert(
            0,
            Turn {
                role: "user",
                blocks: vec![placeholder],
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn turns_merge_and_settle() {
        let mut turns: Vec<Turn<Value>> = Vec::new();
        push_turn(&mut turns, "assistant", vec![json!("hi")]);
        push_turn(&mut turns, "user", vec![json!("q")]);
        push_turn(&mut turns, "user", vec![json!({"result": 1})]);
        push_turn(&mut turns, "user", vec![]);
        settle(&mut turns, |b| b.get("result").is_some(), json!("."));
        let roles: Vec<_> = turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(turns[0].blocks, [json!(".")]);
        assert_eq!(turns[2].blocks, [json!({"result": 1}), json!("q")]);
    }
}
