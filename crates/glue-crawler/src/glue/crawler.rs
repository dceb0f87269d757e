//! The `crawler` strategy: a Glue crawler over the table's prefix, created if missing and
//! started, debounced, when files bring new partitions or a new schema; a running crawl is awaited
//! and one more starts only if new data arrived meanwhile.

use std::collections::BTreeSet;
use std::time::Instant;

use aws_sdk_glue::types::{CrawlerState, CrawlerTargets, S3Target};
use stockstream_common::events::LakeCommitEvent;

use super::{GlueCatalog, GlueOutcome, Strategy, code_of, glue_error};
use crate::error::Result;

/// The crawler's run state as stockstream drives it.
#[derive(Debug, Default)]
pub(super) struct CrawlerTrigger {
    pending_since: Option<Instant>,
    running: bool,
    new_data_while_running: bool,
    last_status: Option<String>,
}

impl GlueCatalog {
    pub(super) fn note_for_crawler(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
    ) -> Result<()> {
        let Some(state) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let mut new_data = false;
        for event in events {
            let mut marker: Vec<String> = event
                .partition
                .iter()
                .map(|value| value.value.clone())
                .collect();
            marker.push(event.schema_fingerprint.clone());
            if state.crawled.insert(marker) {
                new_data = true;
            }
        }
        if new_data {
            if self.crawler.running {
                self.crawler.new_data_while_running = true;
            } else {
                self.crawler.pending_since.get_or_insert_with(Instant::now);
            }
        }
        Ok(())
    }

    pub(super) async fn ensure_crawler(
        &mut self,
        events: &[LakeCommitEvent],
    ) -> Result<GlueOutcome> {
        let outcome = GlueOutcome::default();
        match self
            .client
            .get_crawler()
            .name(&self.settings.crawler_name)
            .send()
            .await
        {
            Ok(_) => return Ok(outcome),
            Err(error) if code_of(&error) == Some("EntityNotFoundException") => {}
            Err(error) => return Err(glue_error("GetCrawler", error)),
        }
        let mut targets = CrawlerTargets::builder();
        let locations: BTreeSet<String> = events
            .iter()
            .map(|event| self.location(&event.table_location))
            .collect();
        for location in locations {
            targets = targets.s3_targets(S3Target::builder().path(location).build());
        }
        match self
            .client
            .create_crawler()
            .name(&self.settings.crawler_name)
            .role(&self.settings.crawler_role)
            .database_name(&self.database)
            .targets(targets.build())
            .description("stockstream: catalogs the Parquet lake when the sink commits new data")
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(crawler = %self.settings.crawler_name, "Glue crawler created");
            }
            Err(error) if code_of(&error) == Some("AlreadyExistsException") => {}
            Err(error) => return Err(glue_error("CreateCrawler", error)),
        }
        Ok(outcome)
    }

    /// Advances the crawler: notices a finished crawl, starts a debounced one. Call it
    /// periodically (the service does, every poll interval).
    pub async fn drive_crawler(&mut self) -> Result<GlueOutcome> {
        let mut outcome = GlueOutcome::default();
        if self.settings.strategy != Strategy::Crawler {
            return Ok(outcome);
        }
        if self.crawler.running {
            let answer = self
                .client
                .get_crawler()
                .name(&self.settings.crawler_name)
                .send()
                .await
                .map_err(|error| glue_error("GetCrawler", error))?;
            let crawler = answer.crawler();
            let state = crawler.and_then(|crawler| crawler.state());
            if state == Some(&CrawlerState::Ready) || state.is_none() {
                self.crawler.running = false;
                self.crawler.last_status = crawler
                    .and_then(|crawler| crawler.last_crawl())
                    .and_then(|crawl| crawl.status())
                    .map(|status| status.as_str().to_string());
                tracing::info!(
                    crawler = %self.settings.crawler_name,
                    last_crawl = self.crawler.last_status.as_deref().unwrap_or("unknown"),
                    "crawl finished"
                );
                if std::mem::take(&mut self.crawler.new_data_while_running) {
                    // Data arrived while the crawl ran: crawl once more, without waiting again.
                    self.crawler.pending_since =
                        Some(Instant::now() - self.settings.crawler_debounce);
                }
            } else {
                return Ok(outcome);
            }
        }
        let due = self
            .crawler
            .pending_since
            .is_some_and(|since| since.elapsed() >= self.settings.crawler_debounce);
        if !due {
            return Ok(outcome);
        }
        match self
            .client
            .start_crawler()
            .name(&self.settings.crawler_name)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(crawler = %self.settings.crawler_name, "crawler started");
                outcome.crawler_starts += 1;
            }
            Err(error) if code_of(&error) == Some("CrawlerRunningException") => {
                // A crawl (started by someone else) is under way: it covers the data seen so far.
                tracing::info!(crawler = %self.settings.crawler_name, "a crawl is already running; waiting for it");
                outcome.crawler_waits += 1;
            }
            Err(error) => return Err(glue_error("StartCrawler", error)),
        }
        self.crawler.pending_since = None;
        self.crawler.running = true;
        Ok(outcome)
    }

    /// Status of the last finished crawl, as Glue reported it (`SUCCEEDED`, `FAILED`, …).
    pub fn last_crawl_status(&self) -> Option<&str> {
        self.crawler.last_status.as_deref()
    }

    /// Whether a crawl is running or waiting for its debounce.
    pub fn crawler_busy(&self) -> bool {
        self.crawler.running || self.crawler.pending_since.is_some()
    }
}
