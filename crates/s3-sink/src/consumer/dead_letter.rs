//! Messages the sink cannot decode go to the dead-letter topic with the reason and their origin
//! (unless `sink.dead_letter_tolerance` is used up, which stops the sink before committing).

use rdkafka::message::{BorrowedMessage, Headers, Message};
use stockstream_common::headers::{
    ERROR_HEADER, SCHEMA_VERSION_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER, STAGE_HEADER,
};
use stockstream_common::kafka::headers;
use stockstream_common::lake::LakeRow;
use stockstream_common::record::{Quote, SCHEMA_VERSION, WireFormat};

use super::{DELIVERY_TIMEOUT, Sink};
use crate::error::{Error, Result};
use crate::metrics;

impl Sink {
    /// Decodes a message; a bad one goes to the dead-letter topic and yields `None`.
    pub(super) fn decode_or_dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
    ) -> Result<Option<LakeRow>> {
        match decode(message) {
            Ok(quote) => Ok(Some(LakeRow {
                quote,
                kafka_partition: message.partition(),
                kafka_offset: message.offset(),
            })),
            Err(reason) => {
                if let Some(limit) = self.config.sink.dead_letter_tolerance
                    && self.dead_letters >= limit
                {
                    // Not dead-lettered and not committed: after the fix, a restart reads it again.
                    // The dead letters already sent are delivered before the sink stops.
                    self.producer.flush(DELIVERY_TIMEOUT)?;
                    return Err(Error::Tolerance {
                        partition: message.partition(),
                        offset: message.offset(),
                        limit,
                        reason,
                    });
                }
                self.dead_letters += 1;
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    %reason,
                    "dead-lettering an undecodable message"
                );
                let partition = message.partition().to_string();
                let offset = message.offset().to_string();
                let dead_letter_headers = headers(&[
                    (ERROR_HEADER, reason.as_str()),
                    (STAGE_HEADER, "s3-sink"),
                    (SOURCE_TOPIC_HEADER, message.topic()),
                    (SOURCE_PARTITION_HEADER, partition.as_str()),
                    (SOURCE_OFFSET_HEADER, offset.as_str()),
                ]);
                self.message_ids += 1;
                self.producer.send(
                    &self.config.kafka.topics.dlq,
                    message.key().unwrap_or_default(),
                    message.payload().unwrap_or_default(),
                    dead_letter_headers,
                    self.message_ids,
                )?;
                metrics::dead_letter();
                Ok(None)
            }
        }
    }
}

fn decode(message: &BorrowedMessage<'_>) -> std::result::Result<Quote, String> {
    if let Some(message_headers) = message.headers() {
        for header in message_headers.iter() {
            if header.key == SCHEMA_VERSION_HEADER {
                let version = header
                    .value
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                if version != SCHEMA_VERSION {
                    return Err(format!(
                        "unsupported schema version `{version}` (this sink reads {SCHEMA_VERSION})"
                    ));
                }
            }
        }
    }
    let payload = message
        .payload()
        .ok_or_else(|| "message has no payload".to_string())?;
    // Our wire format, or the original tutorial producer's (CSV column names, no key or headers).
    let (quote, format) = Quote::from_any_json(payload).map_err(|error| error.to_string())?;
    if format == WireFormat::Tutorial {
        metrics::tutorial_format();
    }
    Ok(quote)
}
