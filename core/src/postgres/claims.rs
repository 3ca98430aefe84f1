//! Who holds each partition, in the [`PARTITIONS_TABLE`]: a claim takes
//! the partition's row lock, so it is ordered with every commit of the
//! partition. Cold path: a transaction per partition assigned.

use postgres::Client;

use super::{connect, pg_error, PARTITIONS_TABLE};
use crate::kafka::{Claim, Claims};
use crate::sink::SinkError;
use crate::sync::cold::{lock, Mutex};

/// The claims of one results table's partitions.
pub struct PostgresClaims {
    client: Mutex<Client>,
    table: String,
}

impl PostgresClaims {
    /// Connects to `url` for the partitions of results table `table` (the
    /// [`PARTITIONS_TABLE`] must exist: a [`PostgresSink`](super::PostgresSink)
    /// creates it).
    pub fn connect(url: &str, table: &str) -> Result<Self, SinkError> {
        Ok(PostgresClaims {
            client: Mutex::new(connect(url)?),
            table: table.to_owned(),
        })
    }

    fn claim_in(&self, topic: &str, partition: i32, owner: &str) -> Result<Claim, SinkError> {
        let mut client = lock(&self.client);
        let mut transaction = client
            .transaction()
            .map_err(|e| pg_error("begin a claim", e))?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO {PARTITIONS_TABLE} \
                     (table_name, topic, \"partition\", next_offset, epoch, generation, owner) \
                     VALUES ($1, $2, $3, NULL, 0, 0, '') ON CONFLICT DO NOTHING"
                ),
                &[&self.table, &topic, &partition],
            )
            .map_err(|e| pg_error("add a partition", e))?;
        let row = transaction
            .query_one(
                &format!(
                    "SELECT next_offset, generation, owner FROM {PARTITIONS_TABLE} \
                     WHERE table_name = $1 AND topic = $2 AND \"partition\" = $3 FOR UPDATE"
                ),
                &[&self.table, &topic, &partition],
            )
            .map_err(|e| pg_error("read a partition's claim", e))?;
        let next_offset: Option<i64> = row.get(0);
        let generation: i64 = row.get(1);
        let held_by: String = row.get(2);
        let kept = held_by == owner;
        let generation = if kept {
            generation
        } else {
            transaction
                .execute(
                    &format!(
                        "UPDATE {PARTITIONS_TABLE} SET generation = $4, owner = $5 \
                         WHERE table_name = $1 AND topic = $2 AND \"partition\" = $3"
                    ),
                    &[&self.table, &topic, &partition, &(generation + 1), &owner],
                )
                .map_err(|e| pg_error("claim a partition", e))?;
            generation + 1
        };
        transaction
            .commit()
            .map_err(|e| pg_error("commit a claim", e))?;
        Ok(Claim {
            generation: generation as u64,
            next_offset,
            kept,
        })
    }
}

impl Claims for PostgresClaims {
    fn claim(&self, topic: &str, partition: i32, owner: &str) -> Result<Claim, String> {
        self.claim_in(topic, partition, owner)
            .map_err(|e| e.to_string())
    }
}

/// A partition as the [`PARTITIONS_TABLE`] holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartition {
    /// The partition.
    pub partition: i32,
    /// The offset after its last committed epoch (`None`: none yet).
    pub next_offset: Option<i64>,
    /// Its committed epochs.
    pub epochs: i64,
    /// Its claim's generation.
    pub generation: i64,
    /// Who claimed it last.
    pub owner: String,
}

/// The partitions of `topic` under results table `table` at `url`, in
/// order (none if the table does not exist yet).
pub fn stored_partitions(
    url: &str,
    table: &str,
    topic: &str,
) -> Result<Vec<StoredPartition>, SinkError> {
    let mut client = connect(url)?;
    let exists: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&PARTITIONS_TABLE])
        .map_err(|e| pg_error("look for the partitions table", e))?
        .get(0);
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT \"partition\", next_offset, epoch, generation, owner FROM {PARTITIONS_TABLE} \
                 WHERE table_name = $1 AND topic = $2 ORDER BY \"partition\""
            ),
            &[&table, &topic],
        )
        .map_err(|e| pg_error("read the partitions", e))?;
    Ok(rows
        .iter()
        .map(|row| StoredPartition {
            partition: row.get(0),
            next_offset: row.get(1),
            epochs: row.get(2),
            generation: row.get(3),
            owner: row.get(4),
        })
        .collect())
}
