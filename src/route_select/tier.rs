//! Priority tiers: a pool's lower tiers take the traffic while any of their
//! targets is usable; a higher tier only when none is.

/// The lowest tier that has a usable target, as indices of its usable
/// targets. `priorities` are the pool's targets' tiers in their order
/// (lower tiers first); `usable(i)` says whether target `i` may take
/// traffic now.
pub fn lowest_usable_tier<I>(priorities: I, usable: &dyn Fn(usize) -> bool) -> Vec<usize>
where
    I: Iterator<Item = u32> + Clone,
{
    let Some(tier) = priorities
        .clone()
        .enumerate()
        .find(|&(i, _)| usable(i))
        .map(|(_, priority)| priority)
    else {
        return Vec::new();
    };
    priorities
        .enumerate()
        .filter(|&(i, priority)| priority == tier && usable(i))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_tier_with_a_usable_target_wins() {
        let priorities = [0, 0, 1, 1];
        let tier =
            |usable: &dyn Fn(usize) -> bool| lowest_usable_tier(priorities.iter().copied(), usable);
        assert_eq!(tier(&|_| true), [0, 1]);
        assert_eq!(tier(&|i| i != 0), [1]);
        assert_eq!(tier(&|i| i >= 2), [2, 3]);
        assert_eq!(tier(&|i| i == 3), [3]);
        assert!(tier(&|_| false).is_empty());
    }
}
