//! The seeder on real PostgreSQL: which rows it picks must not depend on where the server
//! placed them, or the same check would report differently from one run to the next.

mod common;

use migproof::model::seed;
use migproof::observe::catalog;
use migproof::source::config::DataRules;

/// Foreign keys point at the parent rows first in value order (as text), whatever order the parent's
/// rows sit in on disk: the parent's 20 rows are written largest first, so the first rows a
/// scan meets are the largest keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_take_parent_rows_in_value_order_not_disk_order() {
    let (server, _db, mut s) = common::scratch_session().await;
    sqlx::raw_sql(
        "CREATE TABLE parent (id int PRIMARY KEY);
         INSERT INTO parent SELECT g FROM generate_series(20, 1, -1) AS g;
         CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent);",
    )
    .execute(s.conn())
    .await
    .expect("schema");
    let first_on_disk: Vec<i32> = sqlx::query_scalar("SELECT id FROM parent LIMIT 3")
        .fetch_all(s.conn())
        .await
        .unwrap();
    assert_eq!(
        first_on_disk,
        [20, 19, 18],
        "the disk order this test relies on"
    );

    let tables = catalog::tables(s.conn()).await.expect("tables");
    let child: Vec<_> = tables.into_iter().filter(|t| t.name == "child").collect();
    let seeded = s
        .seed(&child, 0, &DataRules::default(), &seed::Shapes::new())
        .await
        .expect("seeds");
    assert!(seeded.inserted > 0, "{seeded:?}");
    let parent_at = child[0]
        .columns
        .iter()
        .position(|c| c.name == "parent_id")
        .unwrap();
    let mut picked: Vec<i32> = seeded
        .rows
        .iter()
        .map(|(_, row)| row[parent_at].as_deref().unwrap().parse().unwrap())
        .collect();
    picked.sort();
    picked.dedup();
    // Value order is the order of the keys as text (`1`, `10`, `11`, ...): stable whatever
    // the disk order.
    let mut by_value: Vec<i32> = (1..=20).collect();
    by_value.sort_by_key(|k| k.to_string());
    let first: Vec<i32> = by_value[..seed::ROWS].to_vec();
    assert!(
        picked.iter().all(|p| first.contains(p)),
        "picked {picked:?}, not among the first {} keys in value order {first:?}",
        seed::ROWS
    );
    drop(s);
    // drops the scratch database too
    server.cleanup().await.expect("cleanup");
}
