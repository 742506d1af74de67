//! Small-cell suppression of expected demand. Opportunities are rows a supplier may not read
//! one by one, so their demand is published only in groups of at least `k` accounts, and
//! only as fixed groups: a cell (product × week × territory), a week's margin (product ×
//! week, all territories) and the horizon's total (product, all weeks and territories).
//! Filters choose which groups are shown, never what a group sums, so no two views differ
//! by anything but whole groups.
//!
//! - **Primary:** a cell built from fewer than `k` accounts is suppressed; so is a margin
//!   or total built from fewer than `k`.
//! - **Secondary, in a week:** a published margin minus its published cells is the sum of
//!   its suppressed cells; while those cover fewer than `k` accounts, the published cell
//!   with the fewest accounts is suppressed too.
//! - **Secondary, over the horizon:** the published total minus the published margins is
//!   the sum of the suppressed weeks; when those cover fewer than `k` accounts (one small
//!   week always does), the total is suppressed.
//!
//! No pure function of the published numbers then isolates a suppressed cell (the oracle
//! checks that with linear algebra over every view). Time is another matter: the same cell
//! read before and after one opportunity changes differs by that opportunity's weight; the
//! view does not defend against an observer of one customer's changes over time.

use std::collections::{BTreeMap, BTreeSet};

/// A cell's key: the week's index in the horizon and the territory (none: an account
/// without one).
pub type CellKey = (usize, Option<String>);

/// One account's weighted demand (Σ quantity × probability %, so hundredths of a unit) in
/// one cell.
#[derive(Clone, Debug)]
pub struct Contribution {
    pub week: usize,
    pub territory: Option<String>,
    pub account: String,
    pub weighted: i64,
}

/// A published or suppressed number, in hundredths of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Shown(i64),
    Suppressed,
}

impl Figure {
    pub fn shown(self) -> Option<i64> {
        match self {
            Figure::Shown(v) => Some(v),
            Figure::Suppressed => None,
        }
    }
}

/// One product's expected demand as it may be published.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub cells: BTreeMap<CellKey, Figure>,
    pub weeks: BTreeMap<usize, Figure>,
    pub total: Option<Figure>,
}

#[derive(Default)]
struct Group {
    value: i64,
    accounts: BTreeSet<String>,
}

fn accounts_of<'a>(groups: impl Iterator<Item = &'a Group>) -> usize {
    groups
        .flat_map(|g| g.accounts.iter())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Suppresses one product's expected demand for groups of at least `k` accounts.
pub fn suppress(contributions: &[Contribution], k: usize) -> Published {
    let mut cells: BTreeMap<CellKey, Group> = BTreeMap::new();
    for c in contributions {
        let cell = cells.entry((c.week, c.territory.clone())).or_default();
        cell.value += c.weighted;
        cell.accounts.insert(c.account.clone());
    }
    if cells.is_empty() {
        return Published::default();
    }
    let mut hidden: BTreeSet<CellKey> = cells
        .iter()
        .filter(|(_, g)| g.accounts.len() < k)
        .map(|(key, _)| key.clone())
        .collect();
    let weeks: BTreeSet<usize> = cells.keys().map(|(w, _)| *w).collect();
    let mut small_weeks = BTreeSet::new();
    for &week in &weeks {
        let in_week: Vec<&CellKey> = cells.keys().filter(|(w, _)| *w == week).collect();
        if accounts_of(in_week.iter().map(|key| &cells[*key])) < k {
            small_weeks.insert(week);
            continue;
        }
        loop {
            let suppressed: Vec<&&CellKey> =
                in_week.iter().filter(|k| hidden.contains(**k)).collect();
            if suppressed.is_empty() || accounts_of(suppressed.iter().map(|key| &cells[**key])) >= k
            {
                break;
            }
            // The published cell with the fewest accounts hides the least.
            let next = in_week
                .iter()
                .filter(|key| !hidden.contains(**key))
                .min_by_key(|key| (cells[**key].accounts.len(), (**key).clone()))
                .map(|key| (*key).clone());
            match next {
                Some(key) => {
                    hidden.insert(key);
                }
                // Every cell is hidden and they cover the margin's k accounts.
                None => break,
            }
        }
    }
    let total_accounts = accounts_of(cells.values());
    let small_weeks_accounts = accounts_of(
        cells
            .iter()
            .filter(|((w, _), _)| small_weeks.contains(w))
            .map(|(_, g)| g),
    );
    let total_hidden = total_accounts < k || (!small_weeks.is_empty() && small_weeks_accounts < k);
    let figure = |hidden: bool, value: i64| {
        if hidden {
            Figure::Suppressed
        } else {
            Figure::Shown(value)
        }
    };
    Published {
        weeks: weeks
            .iter()
            .map(|&w| {
                let value = cells
                    .iter()
                    .filter(|((cw, _), _)| *cw == w)
                    .map(|(_, g)| g.value)
                    .sum();
                (w, figure(small_weeks.contains(&w), value))
            })
            .collect(),
        total: Some(figure(total_hidden, cells.values().map(|g| g.value).sum())),
        cells: cells
            .iter()
            .map(|(key, g)| (key.clone(), figure(hidden.contains(key), g.value)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn c(week: usize, territory: &str, account: &str, weighted: i64) -> Contribution {
        Contribution {
            week,
            territory: Some(territory.into()),
            account: account.into(),
            weighted,
        }
    }

    fn many(week: usize, territory: &str, n: usize, prefix: &str) -> Vec<Contribution> {
        (0..n)
            .map(|i| c(week, territory, &format!("{prefix}{i}"), 100))
            .collect()
    }

    #[test]
    fn a_small_cell_hides_and_takes_its_smallest_neighbour_with_it() {
        let mut rows = many(0, "north", 6, "n");
        rows.extend(many(0, "south", 9, "s"));
        rows.push(c(0, "west", "lonely", 4_200));
        let p = suppress(&rows, 5);
        let cell = |t: &str| p.cells[&(0, Some(t.to_owned()))];
        assert_eq!(cell("west"), Figure::Suppressed);
        // The margin minus the other cells would give the lonely account away: the
        // smaller neighbour goes too, and the big one stays.
        assert_eq!(cell("north"), Figure::Suppressed);
        assert_eq!(cell("south"), Figure::Shown(900));
        assert_eq!(p.weeks[&0], Figure::Shown(600 + 900 + 4_200));
        assert_eq!(p.total, Some(Figure::Shown(600 + 900 + 4_200)));
    }

    #[test]
    fn one_small_week_hides_the_total_and_two_that_add_up_to_k_do_not() {
        let mut rows = many(0, "north", 5, "a");
        rows.extend(many(1, "north", 2, "b"));
        let p = suppress(&rows, 5);
        assert_eq!(p.weeks[&1], Figure::Suppressed);
        assert_eq!(p.total, Some(Figure::Suppressed));
        rows.extend(many(2, "south", 3, "c"));
        let p = suppress(&rows, 5);
        assert_eq!(p.weeks[&1], Figure::Suppressed);
        assert_eq!(p.weeks[&2], Figure::Suppressed);
        assert_eq!(p.total, Some(Figure::Shown(1_000)));
    }

    #[test]
    fn fewer_than_k_accounts_publish_nothing() {
        let p = suppress(&many(3, "north", 4, "a"), 5);
        assert!(p.cells.values().all(|f| *f == Figure::Suppressed));
        assert!(p.weeks.values().all(|f| *f == Figure::Suppressed));
        assert_eq!(p.total, Some(Figure::Suppressed));
        assert!(suppress(&[], 5).total.is_none());
    }

    /// On random worlds: whatever a published margin or total leaves after subtracting the
    /// published numbers under it covers at least k accounts (or nothing).
    #[test]
    fn every_remainder_covers_k_accounts() {
        let mut rng = crm_service_common::seed::World::new(7).rng;
        for _ in 0..500 {
            let k = rng.random_range(2..=6);
            let rows: Vec<Contribution> = (0..rng.random_range(1..60))
                .map(|_| {
                    c(
                        rng.random_range(0..4),
                        ["n", "s", "e", "w"][rng.random_range(0..4)],
                        &format!("a{}", rng.random_range(0..25)),
                        rng.random_range(1..1_000),
                    )
                })
                .collect();
            let p = suppress(&rows, k);
            let accounts = |cell: &dyn Fn(&CellKey) -> bool| {
                rows.iter()
                    .filter(|r| cell(&(r.week, r.territory.clone())))
                    .map(|r| r.account.as_str())
                    .collect::<BTreeSet<_>>()
                    .len()
            };
            for (week, figure) in &p.weeks {
                if *figure == Figure::Suppressed {
                    continue;
                }
                let rest = accounts(&|key| key.0 == *week && p.cells[key] == Figure::Suppressed);
                assert!(
                    rest == 0 || rest >= k,
                    "week {week}: {rest} accounts left, k={k}"
                );
            }
            if p.total == Some(Figure::Shown(rows.iter().map(|r| r.weighted).sum())) {
                let rest = accounts(&|key| p.weeks[&key.0] == Figure::Suppressed);
                assert!(rest == 0 || rest >= k, "total: {rest} accounts left, k={k}");
            }
            for (key, figure) in &p.cells {
                if *figure != Figure::Suppressed {
                    assert!(accounts(&|k2| k2 == key) >= k);
                }
            }
        }
    }
}
