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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poison::blamed_key;
    use crate::test_lake::{TABLE, TestLake};

    const DATABASE: &str = "stockstream";

    #[tokio::test]
    async fn events_create_the_table_then_register_each_partition_once() {
        let lake = TestLake::new();
        let events = [
            lake.commit("HSI", 1987, 0..3).await,
            lake.commit("HSI", 1988, 3..5).await,
            // A second file of a known partition registers nothing new.
            lake.commit("HSI", 1988, 5..7).await,
        ];
        let mut catalog = Catalog::default();
        let outcome = apply_events(&mut catalog, DATABASE, &events, lake.store())
            .await
            .expect("applies");
        assert_eq!(
            outcome,
            ApplyOutcome {
                tables_created: 1,
                schemas_updated: 0,
                partitions_added: 2,
            }
        );
        let table = catalog.table(DATABASE, TABLE).expect("the table");
        assert_eq!(
            table.partitions.keys().collect::<Vec<_>>(),
            ["symbol=HSI/year=1987", "symbol=HSI/year=1988"]
        );
        assert!(table.columns.iter().any(|column| column.name == "close"));
        assert_eq!(
            table.parameters[FINGERPRINT_PARAMETER],
            events[0].schema_fingerprint
        );
        let again = apply_events(&mut catalog, DATABASE, &events, lake.store())
            .await
            .expect("applies again");
        assert!(!again.changed(), "{again:?}");
    }

    #[tokio::test]
    async fn a_new_partition_whose_file_is_gone_is_blamed_on_that_file() {
        let lake = TestLake::new();
        let kept = lake.commit("HSI", 1987, 0..3).await;
        let gone = lake.commit("HSI", 1990, 3..5).await;
        lake.store()
            .delete(&gone.object_key)
            .await
            .expect("deleted");
        let mut catalog = Catalog::default();
        let error = apply_events(&mut catalog, DATABASE, &[kept, gone.clone()], lake.store())
            .await
            .expect_err("a missing file");
        assert_eq!(
            blamed_key(&error),
            Some(gone.object_key.as_str()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn another_schema_fingerprint_updates_the_table_from_the_file() {
        let lake = TestLake::new();
        let mut catalog = Catalog::default();
        let first = lake.commit("HSI", 1987, 0..3).await;
        apply_events(&mut catalog, DATABASE, &[first], lake.store())
            .await
            .expect("applies");
        let mut changed = lake.commit("HSI", 1988, 3..5).await;
        changed.schema_fingerprint = "written by a newer sink".into();
        let outcome = apply_events(&mut catalog, DATABASE, &[changed], lake.store())
            .await
            .expect("applies");
        assert_eq!(outcome.schemas_updated, 1, "{outcome:?}");
        assert_eq!(outcome.partitions_added, 1, "{outcome:?}");
    }
}
