//! The supplier demand view's oracle: its numbers recomputed from the rows an administrator
//! reads (each published expected number is a sum over fixed cells, and must equal the sum
//! of quantity × probability over the opportunities in them, from at least k accounts),
//! and the attacker's algebra: whether some combination of published numbers isolates one
//! cell. Independent of the service's suppression code: it checks properties of what was
//! published, not how it was chosen.

use std::collections::{BTreeMap, BTreeSet};

/// One cell of the grid: product, week (its Monday) and territory (none: no territory).
pub type Cell = (String, String, Option<String>);

/// What the rows say about one cell: Σ quantity × probability (hundredths of a unit) and
/// the accounts behind it.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    pub weighted: i64,
    pub accounts: BTreeSet<String>,
}

/// The truth of a group of cells.
pub fn truth_of<'a>(
    truth: &BTreeMap<Cell, Truth>,
    cells: impl IntoIterator<Item = &'a Cell>,
) -> Truth {
    let mut sum = Truth::default();
    for cell in cells {
        if let Some(t) = truth.get(cell) {
            sum.weighted += t.weighted;
            sum.accounts.extend(t.accounts.iter().cloned());
        }
    }
    sum
}

/// The cells of `target` that a linear combination of the published groups `rows` (each a
/// set of cells whose sum is published) pins down exactly: a cell is recoverable when its
/// unit vector lies in the span of the rows. Gaussian elimination over the rationals,
/// approximated in `f64` (the rows are 0/1 vectors of a few hundred cells).
pub fn recoverable(rows: &[BTreeSet<Cell>], targets: &[Cell]) -> Vec<Cell> {
    let mut columns: BTreeMap<&Cell, usize> = BTreeMap::new();
    for cell in rows.iter().flatten().chain(targets.iter()) {
        let next = columns.len();
        columns.entry(cell).or_insert(next);
    }
    let width = columns.len();
    // A basis in echelon form: (pivot column, row), each row zero left of its pivot and
    // zero in every other basis row's pivot column.
    let mut basis: Vec<(usize, Vec<f64>)> = Vec::new();
    let reduce = |basis: &[(usize, Vec<f64>)], mut v: Vec<f64>| {
        for (pivot, row) in basis {
            let factor = v[*pivot];
            if factor.abs() > 1e-9 {
                for (x, r) in v.iter_mut().zip(row) {
                    *x -= factor * r;
                }
            }
        }
        v
    };
    for group in rows {
        let mut v = vec![0.0; width];
        for cell in group {
            v[columns[cell]] = 1.0;
        }
        let v = reduce(&basis, v);
        if let Some(pivot) = v.iter().position(|x| x.abs() > 1e-9) {
            let scale = v[pivot];
            let v: Vec<f64> = v.iter().map(|x| x / scale).collect();
            for (_, row) in basis.iter_mut() {
                let factor = row[pivot];
                if factor.abs() > 1e-9 {
                    for (x, r) in row.iter_mut().zip(&v) {
                        *x -= factor * r;
                    }
                }
            }
            basis.push((pivot, v));
        }
    }
    targets
        .iter()
        .filter(|cell| {
            let mut v = vec![0.0; width];
            v[columns[cell]] = 1.0;
            reduce(&basis, v).iter().all(|x| x.abs() < 1e-9)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(week: &str, territory: &str) -> Cell {
        ("p".into(), week.into(), Some(territory.into()))
    }

    #[test]
    fn a_margin_minus_its_other_published_cells_recovers_the_last_one() {
        let (a, b, c) = (cell("w1", "n"), cell("w1", "s"), cell("w1", "e"));
        let margin: BTreeSet<Cell> = [a.clone(), b.clone(), c.clone()].into();
        let rows = vec![margin.clone(), [a.clone()].into(), [b.clone()].into()];
        assert_eq!(
            recoverable(&rows, std::slice::from_ref(&c)),
            vec![c.clone()]
        );
        // With two cells hidden, neither comes out.
        let rows = vec![margin, [a.clone()].into()];
        assert!(recoverable(&rows, &[b, c]).is_empty());
    }

    #[test]
    fn differences_of_nested_totals_recover_what_they_differ_by() {
        let cells: Vec<Cell> = (0..4).map(|w| cell(&format!("w{w}"), "n")).collect();
        let all: BTreeSet<Cell> = cells.iter().cloned().collect();
        let three: BTreeSet<Cell> = cells[..3].iter().cloned().collect();
        assert_eq!(recoverable(&[all, three], &cells), vec![cells[3].clone()]);
    }
}
