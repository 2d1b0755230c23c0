//! "Did you mean ...?": the closest known name to a misspelt one.

/// The known name closest to `name`, when it is close enough to be a typo.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (the
/// optimal string alignment distance).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Adds "did you mean" to a TOML error about an unknown key (serde's message lists the known
/// ones: "unknown field `x`, expected one of `a`, `b`" or "expected `a` or `b`").
pub fn explain_unknown_field(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_owned();
    };
    let Some((unknown, rest)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    match closest(unknown, known.iter().copied()) {
        Some(best) => format!("{message}\n    (did you mean `{best}`?)"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key_and_strangers_do_not() {
        let known = ["contains", "not_contains", "content_type", "status"];
        assert_eq!(closest("contain", known), Some("contains"));
        assert_eq!(closest("content-type", known), Some("content_type"));
        assert_eq!(closest("colour", known), None);
        assert_eq!(closest("lnik", ["link", "token"]), Some("link"));
    }

    #[test]
    fn an_unknown_field_error_gets_a_suggestion() {
        let message = "unknown field `statuss`, expected one of `status`, `backend`";
        assert!(explain_unknown_field(message).ends_with("(did you mean `status`?)"));
        assert_eq!(explain_unknown_field("other error"), "other error");
    }
}
