//! Reading the Prometheus text every service serves on `/metrics`.

use std::net::SocketAddr;

use anyhow::Result;

use crate::http_get;

/// The value of `series` in a Prometheus text `page`: a bare metric name sums every label set
/// (`stockstream_lake_files`), a name with its labels picks that one series
/// (`stockstream_query_requests_total{engine="datafusion",outcome="ok"}`); 0 when absent.
pub fn metric_value(page: &str, series: &str) -> f64 {
    let any_labels = !series.ends_with('}');
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(series))
        .filter(|rest| rest.starts_with(' ') || (any_labels && rest.starts_with('{')))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reads `/metrics` at `address` and returns [`metric_value`] of `series`.
pub async fn read_metric(address: SocketAddr, series: &str) -> Result<f64> {
    let (_, page) = http_get(address, "/metrics").await?;
    Ok(metric_value(&page, series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sum_their_series_and_labelled_series_stand_alone() {
        let page = "# TYPE a counter\na{x=\"1\"} 2\na{x=\"2\"} 3\nab 7\nb 1.5\n";
        assert_eq!(metric_value(page, "a"), 5.0);
        assert_eq!(metric_value(page, "a{x=\"2\"}"), 3.0);
        assert_eq!(metric_value(page, "ab"), 7.0);
        assert_eq!(metric_value(page, "b"), 1.5);
        assert_eq!(metric_value(page, "c"), 0.0);
    }
}
