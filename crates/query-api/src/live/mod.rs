//! Live quotes: the query API tails the `quotes` topic itself and keeps what the dashboard's live
//! view needs — the latest quote per symbol, a bounded history for clients that reconnect, and a
//! broadcast of every new quote.
//!
//! Files: `mod.rs` (settings, [`LiveFeed`], cursors), [`tail`] (the Kafka consumer that feeds it;
//! it joins no group and commits nothing). The Server-Sent Events endpoint that serves it is
//! `http/stream.rs`.
//!
//! Each quote carries its Kafka partition and offset. A stream's event id is a [`Cursor`]: the
//! highest offset delivered per partition at that event (`0:812,1:77`), so a client that
//! reconnects with `Last-Event-ID` resumes exactly after what it saw, even when it only follows
//! some symbols. The broadcast is a ring shared by every client (`live.client_buffer` quotes); a
//! client that falls further behind, or more than `live.max_lag` behind in time, is dropped with
//! a reason instead of slowing the tail down.

pub mod tail;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stockstream_common::config::parse_duration;
use stockstream_common::record::Quote;
use stockstream_common::sync::MutexExt;
use stockstream_common::{Error, Result};
use tokio::sync::broadcast;

/// Settings of the live view (section `[live]`).
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Whether the query API tails `quotes` (for `/v1/stream/quotes`).
    pub enabled: bool,
    /// Quotes of each partition read at start and kept for clients that resume.
    pub history: usize,
    /// Quotes a client may fall behind before it is dropped.
    pub client_buffer: usize,
    /// Interval of the `: heartbeat` comments on idle streams.
    pub heartbeat: Duration,
    /// How far behind the tail (in time) a client may be before it is dropped.
    pub max_lag: Duration,
    /// Streams open at once; more get `503`.
    pub max_clients: usize,
}

/// `[live]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLiveSection {
    enabled: bool,
    history: usize,
    client_buffer: usize,
    heartbeat: String,
    max_lag: String,
    max_clients: usize,
}

impl RawLiveSection {
    pub(crate) fn validate(self) -> Result<LiveConfig> {
        let heartbeat = parse_duration("live.heartbeat", &self.heartbeat)?;
        if heartbeat < Duration::from_millis(100) {
            return Err(Error::config("live.heartbeat", "must be at least 100ms"));
        }
        let max_lag = parse_duration("live.max_lag", &self.max_lag)?;
        if max_lag < Duration::from_secs(1) {
            return Err(Error::config("live.max_lag", "must be at least 1s"));
        }
        for (key, value) in [
            ("live.history", self.history),
            ("live.client_buffer", self.client_buffer),
            ("live.max_clients", self.max_clients),
        ] {
            if value == 0 {
                return Err(Error::config(key, "must be at least 1"));
            }
        }
        Ok(LiveConfig {
            enabled: self.enabled,
            history: self.history,
            client_buffer: self.client_buffer,
            heartbeat,
            max_lag,
            max_clients: self.max_clients,
        })
    }
}

/// The live view of a running API: its feed and settings.
#[derive(Debug, Clone)]
pub struct Live {
    /// The feed the tail fills.
    pub feed: LiveFeed,
    /// `[live]`.
    pub config: LiveConfig,
}

/// A quote as the live view sends it: the record plus where it is on the topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveQuote {
    /// The quote (its fields are the event's top-level fields).
    #[serde(flatten)]
    pub quote: Quote,
    /// Kafka partition of `quotes`.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The record's Kafka timestamp (milliseconds since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// When the query API read it from the topic (milliseconds since the epoch).
    pub read_at_ms: i64,
    /// This quote as JSON, made once for every stream that sends it.
    #[serde(skip)]
    pub json: String,
    /// When the tail read it (how far behind a stream is).
    #[serde(skip)]
    pub read_at: Instant,
}

impl LiveQuote {
    /// `quote` as read at `partition`/`offset`, stamped `timestamp_ms` on the topic.
    pub fn new(quote: Quote, partition: i32, offset: i64, timestamp_ms: Option<i64>) -> Self {
        let mut live = Self {
            quote,
            partition,
            offset,
            timestamp_ms,
            read_at_ms: chrono::Utc::now().timestamp_millis(),
            json: String::new(),
            read_at: Instant::now(),
        };
        live.json = serde_json::to_string(&live).unwrap_or_default();
        live
    }
}

/// The highest offset delivered per partition; a stream's event id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<i32, i64>);

impl Cursor {
    /// Marks `offset` of `partition` as delivered.
    pub fn advance(&mut self, partition: i32, offset: i64) {
        let seen = self.0.entry(partition).or_insert(offset);
        *seen = (*seen).max(offset);
    }

    /// Whether the record at `partition`/`offset` was delivered before this cursor.
    pub fn covers(&self, partition: i32, offset: i64) -> bool {
        self.0.get(&partition).is_some_and(|seen| offset <= *seen)
    }

    /// The offset after the last delivered one of `partition`, if any was.
    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.0.get(&partition).map(|offset| offset + 1)
    }

    /// Parses `0:812,1:77` (the form [`fmt::Display`] writes).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut cursor = Cursor::default();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let parsed = part.split_once(':').and_then(|(partition, offset)| {
                Some((partition.parse::<i32>().ok()?, offset.parse::<i64>().ok()?))
            });
            match parsed {
                Some((partition, offset)) if partition >= 0 && offset >= 0 => {
                    cursor.advance(partition, offset)
                }
                _ => {
                    return Err(format!(
                        "`{part}` is not partition:offset (an event id of this stream)"
                    ));
                }
            }
        }
        Ok(cursor)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (partition, offset)) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{partition}:{offset}")?;
        }
        Ok(())
    }
}

/// What a new stream starts from.
#[derive(Debug)]
pub struct Subscription {
    /// The latest quote per symbol (a fresh stream's first event).
    pub snapshot: Vec<Arc<LiveQuote>>,
    /// Quotes after the client's cursor, from the history (a resumed stream).
    pub missed: Vec<Arc<LiveQuote>>,
    /// Whether the history reached back to the client's cursor (`false`: quotes were lost).
    pub resumed: bool,
    /// What the tail had delivered when the stream started.
    pub position: Cursor,
    /// New quotes from here on.
    pub receiver: broadcast::Receiver<Arc<LiveQuote>>,
}

#[derive(Debug, Default)]
struct FeedState {
    latest: BTreeMap<String, Arc<LiveQuote>>,
    history: VecDeque<Arc<LiveQuote>>,
    /// The oldest offset still in the history, per partition (where resuming is exact).
    history_start: BTreeMap<i32, i64>,
    position: Cursor,
}

/// The latest quote per symbol, recent history and the broadcast of new quotes.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    state: Arc<Mutex<FeedState>>,
    sender: broadcast::Sender<Arc<LiveQuote>>,
    history: usize,
}

impl LiveFeed {
    /// A feed keeping `history` quotes, with room for `client_buffer` unread quotes per client.
    pub fn new(history: usize, client_buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(client_buffer.max(1));
        Self {
            state: Arc::new(Mutex::new(FeedState::default())),
            sender,
            history: history.max(1),
        }
    }

    /// Takes in a quote read from the topic and sends it to every stream.
    pub fn publish(&self, quote: LiveQuote) {
        let quote = Arc::new(quote);
        let mut state = self.state.locked();
        if state.position.covers(quote.partition, quote.offset) {
            return; // read again after a reconnect
        }
        state.position.advance(quote.partition, quote.offset);
        state
            .history_start
            .entry(quote.partition)
            .or_insert(quote.offset);
        // Latest by trade date; on the same date the later record wins (a correction).
        let newer = state
            .latest
            .get(&quote.quote.symbol)
            .is_none_or(|known| quote.quote.trade_date >= known.quote.trade_date);
        if newer {
            state
                .latest
                .insert(quote.quote.symbol.clone(), quote.clone());
        }
        state.history.push_back(quote.clone());
        while state.history.len() > self.history {
            if let Some(evicted) = state.history.pop_front() {
                state
                    .history_start
                    .insert(evicted.partition, evicted.offset + 1);
            }
        }
        // Sent under the lock, so a subscriber sees each quote either in its history or here.
        let _ = self.sender.send(quote);
    }

    /// Starts a stream: the snapshot, the quotes after `after` (when resuming) and a receiver.
    pub fn subscribe(&self, after: Option<&Cursor>) -> Subscription {
        let state = self.state.locked();
        let receiver = self.sender.subscribe();
        let (missed, resumed) = match after {
            None => (Vec::new(), true),
            Some(cursor) => {
                let missed = state
                    .history
                    .iter()
                    .filter(|quote| !cursor.covers(quote.partition, quote.offset))
                    .cloned()
                    .collect();
                // Exact when, for every partition the history starts after its beginning, the
                // client had seen everything before that start.
                let resumed = state
                    .history_start
                    .iter()
                    .all(|(partition, start)| *start == 0 || cursor.covers(*partition, start - 1));
                (missed, resumed)
            }
        };
        Subscription {
            snapshot: state.latest.values().cloned().collect(),
            missed,
            resumed,
            position: state.position.clone(),
            receiver,
        }
    }

    /// The quotes in the history, oldest first.
    pub fn history(&self) -> Vec<Arc<LiveQuote>> {
        self.state.locked().history.iter().cloned().collect()
    }

    /// The oldest offset still in the history, per partition.
    pub fn history_start(&self) -> BTreeMap<i32, i64> {
        self.state.locked().history_start.clone()
    }

    /// Symbols with a latest quote.
    pub fn symbols(&self) -> usize {
        self.state.locked().latest.len()
    }

    /// What the tail has read so far.
    pub fn position(&self) -> Cursor {
        self.state.locked().position.clone()
    }

    /// Streams currently receiving.
    pub fn clients(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn quote(symbol: &str, day: u32, partition: i32, offset: i64) -> LiveQuote {
        let quote = Quote {
            symbol: symbol.to_string(),
            trade_date: NaiveDate::from_ymd_opt(2024, 1, day).expect("date"),
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            adj_close: 1.5,
            volume: 10,
            close_usd: None,
        };
        LiveQuote::new(quote, partition, offset, None)
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor::parse("1:77, 0:812").expect("cursor");
        assert_eq!(cursor.to_string(), "0:812,1:77");
        assert!(cursor.covers(0, 812) && !cursor.covers(0, 813) && !cursor.covers(2, 0));
        assert!(Cursor::parse("0:x").is_err());
        assert!(Cursor::parse("-1:3").is_err());
        assert_eq!(Cursor::parse("").expect("empty"), Cursor::default());
    }

    #[test]
    fn latest_is_by_trade_date_and_duplicates_are_ignored() {
        let feed = LiveFeed::new(10, 10);
        feed.publish(quote("HSI", 5, 0, 0));
        feed.publish(quote("HSI", 3, 0, 1)); // an older day arriving later
        feed.publish(quote("HSI", 5, 0, 1)); // a duplicate offset
        feed.publish(quote("N225", 4, 1, 0));
        let subscription = feed.subscribe(None);
        let latest: Vec<(String, u32, i64)> = subscription
            .snapshot
            .iter()
            .map(|quote| {
                (
                    quote.quote.symbol.clone(),
                    chrono::Datelike::day(&quote.quote.trade_date),
                    quote.offset,
                )
            })
            .collect();
        assert_eq!(
            latest,
            vec![("HSI".to_string(), 5, 0), ("N225".to_string(), 4, 0)]
        );
        assert_eq!(feed.position().to_string(), "0:1,1:0");
    }

    #[test]
    fn resuming_sends_what_the_client_missed_or_says_it_cannot() {
        let feed = LiveFeed::new(3, 10);
        for offset in 0..3 {
            feed.publish(quote("HSI", 1, 0, offset));
        }
        let resumed = feed.subscribe(Some(&Cursor::parse("0:0").expect("cursor")));
        assert!(resumed.resumed);
        let offsets: Vec<i64> = resumed.missed.iter().map(|quote| quote.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
        // Two more quotes push offsets 0 and 1 out of the history: a client at 0:0 lost offset 1.
        feed.publish(quote("HSI", 2, 0, 3));
        feed.publish(quote("HSI", 2, 0, 4));
        let lost = feed.subscribe(Some(&Cursor::parse("0:0").expect("cursor")));
        assert!(!lost.resumed);
        let exact = feed.subscribe(Some(&Cursor::parse("0:1").expect("cursor")));
        assert!(exact.resumed);
        assert_eq!(exact.missed.len(), 3);
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_lags_without_blocking_the_feed() {
        let feed = LiveFeed::new(100, 4);
        let mut slow = feed.subscribe(None).receiver;
        for offset in 0..10 {
            feed.publish(quote("HSI", 1, 0, offset));
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(6))
        ));
    }
}
