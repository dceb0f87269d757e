//! Applying `lake.commits` events to the catalog.

use stockstream_common::catalog::Catalog;
use stockstream_common::events::LakeCommitEvent;
use stockstream_common::lake::{LakeStore, partition_path};

use crate::error::Result;
use crate::tables::{
    FINGERPRINT_PARAMETER, add_partition, database_mut, file_columns, new_table, require_file,
};

/// What applying events changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Tables created.
    pub tables_created: u64,
    /// Table definitions updated after a schema change.
    pub schemas_updated: u64,
    /// Partitions registered.
    pub partitions_added: u64,
}

impl ApplyOutcome {
    /// Whether the catalog changed.
    pub fn changed(&self) -> bool {
        self.tables_created + self.schemas_updated + self.partitions_added > 0
    }
}

/// Applies events to `catalog`. Idempotent: applying the same events again changes nothing.
///
/// A new table, or an event whose schema fingerprint differs from the table's, makes the service
/// read that file's Parquet footer for the column definitions, as a Glue crawler would; a new
/// partition is registered only if the event's file exists. A missing or unreadable file is an
/// error naming its key, which the service blames on the event (see `poison`).
pub async fn apply_events(
    catalog: &mut Catalog,
    database: &str,
    events: &[LakeCommitEvent],
    store: &dyn LakeStore,
) -> Result<ApplyOutcome> {
    let mut outcome = ApplyOutcome::default();
    for event in events {
        let existing = catalog.table(database, &event.table).map(|table| {
            table
                .parameters
                .get(FINGERPRINT_PARAMETER)
                .is_some_and(|fingerprint| *fingerprint == event.schema_fingerprint)
        });
        match existing {
            None => {
                let columns = file_columns(store, &event.object_key).await?;
                let table = new_table(
                    &event.table,
                    &event.table_location,
                    columns,
                    event.partition_keys.clone(),
                );
                tracing::info!(table = %event.table, database, "table created");
                database_mut(catalog, database)
                    .tables
                    .insert(event.table.clone(), table);
                outcome.tables_created += 1;
            }
            Some(false) => {
                let columns = file_columns(store, &event.object_key).await?;
                if let Some(table) = database_mut(catalog, database).tables.get_mut(&event.table) {
                    let replacement = new_table(
                        &event.table,
                        &event.table_location,
                        columns,
                        event.partition_keys.clone(),
                    );
                    tracing::info!(
                        table = %event.table,
                        fingerprint = %event.schema_fingerprint,
                        "table schema updated"
                    );
                    table.columns = replacement.columns;
                    table.partition_keys = replacement.partition_keys;
                    table.parameters = replacement.parameters;
                    outcome.schemas_updated += 1;
                }
            }
            Some(true) => {}
        }
        if let Some(table) = database_mut(catalog, database).tables.get_mut(&event.table) {
            let path = partition_path(&event.partition);
            // Known partitions cost no request.
            if !table.partitions.contains_key(&path) {
                require_file(store, &event.object_key).await?;
            }
            if add_partition(table, &event.partition) {
                outcome.partitions_added += 1;
            }
        }
    }
    Ok(outcome)
}
