//! The one way this project bounds an in-memory map of remembered things (the gateway's
//! reusable tokens, the tokens a subgraph verified, the credentials the door accepted).

use std::collections::HashMap;
use std::hash::Hash;

/// Makes room before an insert: at `limit` entries, drops those `keep` rejects (expired or
/// stale ones), and when that frees nothing, all of them: a memory full of live entries
/// starts over rather than grows.
pub fn make_room<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    limit: usize,
    keep: impl FnMut(&K, &mut V) -> bool,
) {
    if map.len() < limit {
        return;
    }
    map.retain(keep);
    if map.len() >= limit {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_from_the_rejected_first_then_from_everything() {
        let mut map: HashMap<u32, u32> = (0..4).map(|i| (i, i)).collect();
        make_room(&mut map, 5, |_, _| false);
        assert_eq!(map.len(), 4, "below the limit nothing is dropped");
        make_room(&mut map, 4, |_, v| *v >= 2);
        assert_eq!(map.len(), 2, "the rejected are dropped");
        make_room(&mut map, 2, |_, _| true);
        assert!(map.is_empty(), "full of live entries: starts over");
    }
}
