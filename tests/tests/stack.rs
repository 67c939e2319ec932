//! The local stack is built from template.yaml: what the emulators hold must be what the code expects.

use aws_sdk_dynamodb::types::KeyType;
use callrecords::recording::RECORDINGS_PREFIX;
use callrecords::store::layout;
use integration_tests::*;

#[tokio::test]
async fn the_table_created_from_the_template_has_the_layouts_keys_and_indexes() {
    let stack = stack("2025-01-15T11:00:00Z").await;
    let table = stack
        .app
        .store
        .client()
        .describe_table()
        .table_name(stack.app.store.table())
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let keys: Vec<(&str, &KeyType)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(keys, [(layout::PK, &KeyType::Hash), (layout::SK, &KeyType::Range)]);
    let gsis = table.global_secondary_indexes();
    assert_eq!(gsis.len(), 3 + layout::ListIndex::ALL.len());
    let list = layout::ListIndex::ALL.map(|i| (i.name(), i.pk_attr(), layout::LIST_SK));
    for (name, pk, sk) in [
        (layout::GSI1, layout::GSI1_PK, layout::GSI1_SK),
        (layout::GSI2, layout::GSI2_PK, layout::GSI2_SK),
        (layout::GSI3, layout::GSI3_PK, layout::GSI3_SK),
    ]
    .into_iter()
    .chain(list)
    {
        let gsi = gsis
            .iter()
            .find(|g| g.index_name() == Some(name))
            .unwrap_or_else(|| panic!("{name}"));
        let keys: Vec<&str> = gsi.key_schema().iter().map(|k| k.attribute_name()).collect();
        assert_eq!(keys, [pk, sk], "{name}");
    }
}

#[tokio::test]
async fn the_bucket_expires_recordings_after_the_retention() {
    let stack = stack("2025-01-15T11:00:00Z").await;
    let rules = stack
        .app
        .recordings
        .client()
        .get_bucket_lifecycle_configuration()
        .bucket(stack.app.recordings.bucket())
        .send()
        .await
        .unwrap();
    let rule = &rules.rules()[0];
    assert_eq!(
        rule.expiration().and_then(|e| e.days()),
        Some(stack.app.config.retention.in_days() as i32)
    );
    assert_eq!(rule.filter().and_then(|f| f.prefix()), Some(RECORDINGS_PREFIX));
}
