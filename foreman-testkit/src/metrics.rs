//! Reading a Prometheus text scrape, as tests of `GET /metrics` do.

use std::collections::HashMap;

/// Every sample of a Prometheus text scrape, by its series as written (`name{labels}`).
/// Panics on a sample line that is not `series value`.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not `series value`: {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_metrics;

    #[test]
    fn samples_are_keyed_by_their_series_and_comments_skipped() {
        let text = "# HELP foreman_jobs Jobs.\n# TYPE foreman_jobs gauge\n\
                    foreman_jobs{state=\"done\"} 3\nforeman_up 1\n\n";
        let samples = parse_metrics(text);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples["foreman_jobs{state=\"done\"}"], 3.0);
        assert_eq!(samples["foreman_up"], 1.0);
    }
}
