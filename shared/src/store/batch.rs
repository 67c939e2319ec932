//! Batching and paging: BatchWriteItem in groups DynamoDB accepts, their unprocessed parts
//! retried with one back-off, and Queries followed page by page with the SDK's paginator.

use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use super::codec::{s, Item};
use super::{classify, layout, DynamoStore};
use crate::error::StoreError;

/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;

pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::Failed(format!("PutRequest: {e}")))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

pub(super) fn delete_request(pk: &str, sk: &str) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key(pk, sk)))
        .build()
        .map_err(|e| StoreError::Failed(format!("DeleteRequest: {e}")))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// The primary key of an item.
pub(super) fn key(pk: &str, sk: &str) -> Item {
    Item::from([(layout::PK.to_owned(), s(pk)), (layout::SK.to_owned(), s(sk))])
}

/// Waits before another try at a batch's unprocessed part (or a write that met another at once), longer
/// each time (50 ms doubling up to 1.6 s, with jitter); after 8 tries the service counts as unavailable.
pub(super) async fn back_off(op: &str, attempt: &mut u32) -> Result<(), StoreError> {
    *attempt += 1;
    if *attempt > 8 {
        return Err(StoreError::Unavailable(format!("{op}: no progress after retries")));
    }
    let base = 25u64 << (*attempt).min(6);
    let mut jitter = [0u8; 1];
    let _ = getrandom::fill(&mut jitter);
    tokio::time::sleep(Duration::from_millis(base + base * u64::from(jitter[0]) / 256)).await;
    Ok(())
}

impl DynamoStore {
    /// BatchWriteItem in groups of 25, retrying unprocessed items with back-off.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for group in requests.chunks(WRITE_BATCH) {
            let mut pending = group.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    back_off("BatchWriteItem", &mut attempt).await?;
                }
            }
        }
        Ok(())
    }
}

/// Sends a Query and each page after it (the SDK's paginator), handing every response to `on_page`.
pub(super) async fn each_page(
    query: QueryFluentBuilder,
    mut on_page: impl FnMut(QueryOutput),
) -> Result<(), StoreError> {
    let mut pages = query.into_paginator().send();
    while let Some(page) = pages.next().await {
        on_page(page.map_err(|e| classify("Query", e))?);
    }
    Ok(())
}

/// Every item a Query returns, following its pages.
pub(super) async fn all_pages(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    each_page(query, |out| items.extend(out.items.unwrap_or_default())).await?;
    Ok(items)
}
