//! Reads the table, the bucket's retention rule and the retention parameter out of template.yaml, so the
//! local stack is created from the very definitions that are deployed. Only the operator tool and the tests
//! use this (feature `admin`); the Lambda functions never parse the template.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use serde_norway::Value;

/// template.yaml, as built into this binary.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

pub const TABLE_RESOURCE: &str = "CallsTable";
pub const BUCKET_RESOURCE: &str = "RecordingsBucket";
pub const RETENTION_PARAMETER: &str = "RecordingRetentionDays";

#[derive(Debug, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(String);

fn err<T>(what: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(what.into()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyDef {
    pub attribute: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub keys: Vec<KeyDef>,
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<KeyDef>,
    pub indexes: Vec<IndexDef>,
    pub billing_mode: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleDef {
    pub id: String,
    pub prefix: String,
    /// The parameter `ExpirationInDays` refers to.
    pub days_parameter: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub table: TableDef,
    pub lifecycle: LifecycleDef,
    pub retention_default_days: u32,
    /// `Globals.Function.Environment.Variables`: each variable and the resource or parameter it `!Ref`s
    /// (plain values as they are).
    pub function_env: BTreeMap<String, String>,
    /// `Outputs` whose value is a `!Ref`: each output's name and the resource or parameter it names. The
    /// operator tool's `--stack` finds the table and the bucket of a deployed stack through these.
    pub ref_outputs: BTreeMap<String, String>,
}

impl Template {
    /// The name of the output that gives `resource`'s name (`!Ref` of it).
    pub fn output_naming(&self, resource: &str) -> Result<&str, TemplateError> {
        let mut found = self.ref_outputs.iter().filter(|(_, target)| *target == resource);
        match (found.next(), found.next()) {
            (Some((name, _)), None) => Ok(name),
            (None, _) => err(format!("no output gives {resource}'s name (Value: !Ref {resource})")),
            (Some(_), Some(_)) => err(format!("more than one output gives {resource}'s name")),
        }
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, TemplateError> {
    let mut cur = v;
    for p in path {
        cur = match cur.get(*p) {
            Some(next) => next,
            None => return err(format!("missing {}", path.join("."))),
        };
    }
    Ok(cur)
}

fn string(v: &Value, what: &str) -> Result<String, TemplateError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => err(format!("{what} is not a string")),
    }
}

/// The target of `!Ref X`, the text of `!Sub "…"`, or the plain value.
fn reference(v: &Value, what: &str) -> Result<String, TemplateError> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" || t.tag == "Sub" => string(&t.value, what),
        other => string(other, what),
    }
}

fn seq<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, TemplateError> {
    v.as_sequence()
        .ok_or_else(|| TemplateError(format!("{what} is not a list")))
}

fn keys(v: &Value, what: &str) -> Result<Vec<KeyDef>, TemplateError> {
    seq(v, what)?
        .iter()
        .map(|k| {
            Ok(KeyDef {
                attribute: string(get(k, &["AttributeName"])?, what)?,
                kind: string(get(k, &["KeyType"])?, what)?,
            })
        })
        .collect()
}

pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
    let doc: Value = serde_norway::from_str(yaml).map_err(|e| TemplateError(e.to_string()))?;
    let props = get(&doc, &["Resources", TABLE_RESOURCE, "Properties"])?;
    let attributes = seq(get(props, &["AttributeDefinitions"])?, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            Ok((
                string(get(a, &["AttributeName"])?, "AttributeName")?,
                string(get(a, &["AttributeType"])?, "AttributeType")?,
            ))
        })
        .collect::<Result<Vec<_>, TemplateError>>()?;
    let indexes = match props.get("GlobalSecondaryIndexes") {
        None => Vec::new(),
        Some(list) => seq(list, "GlobalSecondaryIndexes")?
            .iter()
            .map(|i| {
                Ok(IndexDef {
                    name: string(get(i, &["IndexName"])?, "IndexName")?,
                    keys: keys(get(i, &["KeySchema"])?, "index KeySchema")?,
                    projection: string(get(i, &["Projection", "ProjectionType"])?, "ProjectionType")?,
                    non_key_attributes: match i.get("Projection").and_then(|p| p.get("NonKeyAttributes")) {
                        Some(list) => seq(list, "NonKeyAttributes")?
                            .iter()
                            .map(|a| string(a, "NonKeyAttributes"))
                            .collect::<Result<Vec<_>, _>>()?,
                        None => Vec::new(),
                    },
                })
            })
            .collect::<Result<Vec<_>, TemplateError>>()?,
    };
    let table = TableDef {
        attributes,
        keys: keys(get(props, &["KeySchema"])?, "KeySchema")?,
        indexes,
        billing_mode: string(get(props, &["BillingMode"])?, "BillingMode")?,
    };

    let rules = seq(
        get(
            &doc,
            &[
                "Resources",
                BUCKET_RESOURCE,
                "Properties",
                "LifecycleConfiguration",
                "Rules",
            ],
        )?,
        "Rules",
    )?;
    let Some(rule) = rules.iter().find(|r| r.get("ExpirationInDays").is_some()) else {
        return err("the recordings bucket has no expiring lifecycle rule");
    };
    let lifecycle = LifecycleDef {
        id: string(get(rule, &["Id"])?, "Id")?,
        prefix: string(get(rule, &["Prefix"])?, "Prefix")?,
        days_parameter: reference(get(rule, &["ExpirationInDays"])?, "ExpirationInDays")?,
    };

    let default = get(&doc, &["Parameters", RETENTION_PARAMETER, "Default"])?;
    let retention_default_days = default
        .as_u64()
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| TemplateError(format!("{RETENTION_PARAMETER} default is not a number of days")))?;

    let vars = get(&doc, &["Globals", "Function", "Environment", "Variables"])?;
    let mut function_env = BTreeMap::new();
    if let Some(map) = vars.as_mapping() {
        for (k, v) in map {
            function_env.insert(string(k, "variable name")?, reference(v, "variable")?);
        }
    }
    let mut ref_outputs = BTreeMap::new();
    if let Some(map) = doc.get("Outputs").and_then(Value::as_mapping) {
        for (k, v) in map {
            if let Some(Value::Tagged(t)) = v.get("Value") {
                if t.tag == "Ref" {
                    ref_outputs.insert(string(k, "output name")?, string(&t.value, "output")?);
                }
            }
        }
    }
    Ok(Template {
        table,
        lifecycle,
        retention_default_days,
        function_env,
        ref_outputs,
    })
}

/// The deployed template.
pub fn deployed() -> Result<Template, TemplateError> {
    parse(TEMPLATE_YAML)
}

/// One route of the template's HTTP API: an `HttpApi` event of a function.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The function's logical id (`GetCallFunction`).
    pub function: String,
}

/// Every route of the template's HTTP API, sorted by path and method. template.yaml is the one place
/// routes are declared: openapi.yaml is checked against this list, and the local gateway reads the same.
pub fn routes(yaml: &str) -> Result<Vec<Route>, TemplateError> {
    let doc: Value = serde_norway::from_str(yaml).map_err(|e| TemplateError(e.to_string()))?;
    let Some(resources) = get(&doc, &["Resources"])?.as_mapping() else {
        return err("Resources is not a map");
    };
    let mut found = Vec::new();
    for (name, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let props = &event["Properties"];
            found.push(Route {
                method: string(get(props, &["Method"])?, "Method")?.to_uppercase(),
                path: string(get(props, &["Path"])?, "Path")?,
                function: string(name, "function name")?,
            });
        }
    }
    found.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(found)
}

/// A metric that an alarm of the template reads from the functions' own namespace (the one
/// `METRICS_NAMESPACE` names), with the dimensions the alarm asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmedMetric {
    pub alarm: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

/// Every metric of the functions' own namespace that an alarm in `yaml` reads, in simple alarms and in
/// the metric math of the others. Alarms on AWS namespaces (Lambda, API Gateway, DynamoDB, SQS) are left
/// out: AWS emits those.
pub fn alarmed_metrics(yaml: &str) -> Result<Vec<AlarmedMetric>, TemplateError> {
    let doc: Value = serde_norway::from_str(yaml).map_err(|e| TemplateError(e.to_string()))?;
    let namespace = get(
        &doc,
        &["Globals", "Function", "Environment", "Variables", "METRICS_NAMESPACE"],
    )?;
    let mut found = Vec::new();
    let Some(resources) = get(&doc, &["Resources"])?.as_mapping() else {
        return err("Resources is not a map");
    };
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let alarm = string(name, "alarm name")?;
        let props = &resource["Properties"];
        let mut metrics = vec![props];
        if let Some(list) = props.get("Metrics") {
            for m in seq(list, "Metrics")? {
                if let Some(metric) = m.get("MetricStat").and_then(|s| s.get("Metric")) {
                    metrics.push(metric);
                }
            }
        }
        for metric in metrics {
            if metric.get("Namespace") != Some(namespace) {
                continue;
            }
            let mut dimensions = Vec::new();
            if let Some(list) = metric.get("Dimensions") {
                for d in seq(list, "Dimensions")? {
                    dimensions.push((
                        string(get(d, &["Name"])?, "dimension name")?,
                        string(get(d, &["Value"])?, "dimension value")?,
                    ));
                }
            }
            found.push(AlarmedMetric {
                alarm: alarm.clone(),
                name: string(get(metric, &["MetricName"])?, "MetricName")?,
                dimensions,
            });
        }
    }
    Ok(found)
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Aws(String),
}

fn aws_err(op: &str, e: impl std::fmt::Display) -> SetupError {
    SetupError::Aws(format!("{op}: {e}"))
}

fn key_element(k: &KeyDef) -> Result<KeySchemaElement, SetupError> {
    KeySchemaElement::builder()
        .attribute_name(&k.attribute)
        .key_type(KeyType::from(k.kind.as_str()))
        .build()
        .map_err(|e| aws_err("key schema", e))
}

/// Creates the table as template.yaml declares it (if it does not exist yet) and waits until it is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), SetupError> {
    let def = deployed()?.table;
    let exists = client.describe_table().table_name(name).send().await.is_ok();
    if !exists {
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::from(def.billing_mode.as_str()));
        for (attr, kind) in &def.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| aws_err("attribute", e))?,
            );
        }
        for k in &def.keys {
            req = req.key_schema(key_element(k)?);
        }
        for i in &def.indexes {
            let mut gsi = GlobalSecondaryIndex::builder().index_name(&i.name).projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(i.projection.as_str()))
                    .set_non_key_attributes((!i.non_key_attributes.is_empty()).then(|| i.non_key_attributes.clone()))
                    .build(),
            );
            for k in &i.keys {
                gsi = gsi.key_schema(key_element(k)?);
            }
            req = req.global_secondary_indexes(gsi.build().map_err(|e| aws_err("index", e))?);
        }
        req.send()
            .await
            .map_err(|e| aws_err("CreateTable", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    for _ in 0..100 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DescribeTable", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SetupError::Aws(format!("table {name} did not become active")))
}

/// Creates the bucket (if it does not exist yet) with template.yaml's retention rule for `retention_days`.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str, retention_days: u32) -> Result<(), SetupError> {
    let rule = deployed()?.lifecycle;
    if client.head_bucket().bucket(name).send().await.is_err() {
        client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| aws_err("CreateBucket", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
    let lifecycle = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id(rule.id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(rule.prefix).build())
                .expiration(LifecycleExpiration::builder().days(retention_days as i32).build())
                .build()
                .map_err(|e| aws_err("lifecycle rule", e))?,
        )
        .build()
        .map_err(|e| aws_err("lifecycle", e))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(|e| {
            aws_err(
                "PutBucketLifecycleConfiguration",
                aws_sdk_s3::error::DisplayErrorContext(e),
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_RETENTION_DAYS;
    use crate::recording::RECORDINGS_PREFIX;
    use crate::store::layout;

    #[test]
    fn template_table_matches_the_key_layout() {
        let t = deployed().unwrap().table;
        let key = |a: &str, k: &str| KeyDef {
            attribute: a.into(),
            kind: k.into(),
        };
        assert_eq!(t.keys, vec![key(layout::PK, "HASH"), key(layout::SK, "RANGE")]);
        let gsi1 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI1)
            .expect("gsi1 in template");
        assert_eq!(
            gsi1.keys,
            vec![key(layout::GSI1_PK, "HASH"), key(layout::GSI1_SK, "RANGE")]
        );
        let gsi2 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI2)
            .expect("gsi2 in template");
        assert_eq!(
            gsi2.keys,
            vec![key(layout::GSI2_PK, "HASH"), key(layout::GSI2_SK, "RANGE")]
        );
        assert_eq!(gsi2.projection, "INCLUDE");
        assert_eq!(gsi2.non_key_attributes, [layout::RECORDING]);
        let gsi3 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI3)
            .expect("gsi3 in template");
        assert_eq!(
            gsi3.keys,
            vec![key(layout::GSI3_PK, "HASH"), key(layout::GSI3_SK, "RANGE")]
        );
        assert_eq!(gsi3.projection, "KEYS_ONLY");
        for list in layout::ListIndex::ALL {
            let index = t
                .indexes
                .iter()
                .find(|i| i.name == list.name())
                .unwrap_or_else(|| panic!("{} in template", list.name()));
            assert_eq!(
                index.keys,
                vec![key(list.pk_attr(), "HASH"), key(layout::LIST_SK, "RANGE")]
            );
            assert_eq!(index.projection, "ALL", "{}", list.name());
        }
        assert_eq!(
            t.indexes.len(),
            3 + layout::ListIndex::ALL.len(),
            "every index in the template is one the layout documents"
        );
        for (attr, kind) in &t.attributes {
            assert_eq!(kind, "S", "{attr}");
        }
    }

    #[test]
    fn template_retention_feeds_the_rule_and_the_functions_with_the_code_default() {
        let t = deployed().unwrap();
        assert_eq!(t.retention_default_days, DEFAULT_RETENTION_DAYS);
        assert_eq!(t.lifecycle.prefix, RECORDINGS_PREFIX);
        assert_eq!(t.lifecycle.days_parameter, RETENTION_PARAMETER);
        assert_eq!(
            t.function_env.get("RECORDING_RETENTION_DAYS").map(String::as_str),
            Some(RETENTION_PARAMETER)
        );
        assert_eq!(
            t.function_env.get("CALLS_TABLE").map(String::as_str),
            Some(TABLE_RESOURCE)
        );
        assert_eq!(
            t.function_env.get("RECORDINGS_BUCKET").map(String::as_str),
            Some(BUCKET_RESOURCE)
        );
    }

    #[test]
    fn list_calls_may_query_every_list_index_and_gets_its_cursor_key_from_the_stack() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let function = &doc["Resources"]["ListCallsFunction"]["Properties"];
        let env = &function["Environment"]["Variables"]["CURSOR_SECRET"];
        let env = serde_norway::to_string(env).unwrap();
        assert!(env.contains("resolve:secretsmanager:${CursorSecret}"), "{env}");
        let policy = serde_norway::to_string(&function["Policies"]).unwrap();
        for index in layout::ListIndex::ALL {
            assert!(policy.contains(&format!("/index/{}", index.name())), "{}", index.name());
        }
        assert!(!policy.contains("dynamodb:Scan"));
    }

    #[test]
    fn the_stack_names_its_table_and_bucket_in_the_outputs_the_operator_tool_reads() {
        let t = deployed().unwrap();
        // README's "Deploying" and the operator tool's errors name these two.
        assert_eq!(t.output_naming(TABLE_RESOURCE).unwrap(), "CallsTableName");
        assert_eq!(t.output_naming(BUCKET_RESOURCE).unwrap(), "RecordingsBucketName");
        assert!(
            !t.ref_outputs.contains_key("ApiUrl"),
            "a !Sub output is no resource's name"
        );
    }

    #[test]
    fn a_resource_named_by_no_output_or_by_two_is_an_error() {
        let mut t = deployed().unwrap();
        t.ref_outputs = [("TableA", TABLE_RESOURCE), ("TableB", TABLE_RESOURCE)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(t
            .output_naming(TABLE_RESOURCE)
            .unwrap_err()
            .to_string()
            .contains("more than one"));
        let missing = t.output_naming(BUCKET_RESOURCE).unwrap_err().to_string();
        assert!(missing.contains(BUCKET_RESOURCE), "{missing}");
    }

    #[test]
    fn the_api_runs_no_authorizer_and_each_api_function_reads_keys_itself() {
        let t = deployed().unwrap();
        assert_eq!(
            t.function_env.get("API_KEY_CACHE_SECONDS").map(String::as_str),
            Some("ApiKeyCacheSeconds")
        );
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        assert!(doc["Resources"]["HttpApi"]["Properties"].get("Auth").is_none());
        let resources = doc["Resources"].as_mapping().unwrap();
        let mut api_functions = std::collections::BTreeSet::new();
        for route in super::routes(TEMPLATE_YAML).unwrap() {
            if route.function != "WebhookFunction" {
                api_functions.insert(route.function);
            }
        }
        assert_eq!(api_functions.len(), 4, "{api_functions:?}");
        for (name, resource) in resources {
            let text = serde_norway::to_string(resource).unwrap();
            assert!(!text.contains("Authorizer"), "{name:?} names an authorizer");
            let name = name.as_str().unwrap();
            if api_functions.contains(name) {
                assert!(text.contains("dynamodb:GetItem"), "{name}: the key check needs GetItem");
            }
        }
    }

    #[test]
    fn no_function_may_scan_and_every_grant_names_an_exact_resource() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let mut functions = 0;
        for (name, resource) in resources {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            functions += 1;
            let policies = serde_norway::to_string(&resource["Properties"]["Policies"]).unwrap();
            assert!(!policies.contains("Scan"), "{name:?} may scan");
            assert!(
                !policies.contains("Resource: '*'") && !policies.contains("\"*\""),
                "{name:?}: a wildcard resource"
            );
            assert!(
                !policies.contains("dynamodb:*") && !policies.contains("s3:*"),
                "{name:?}: a wildcard action"
            );
        }
        assert_eq!(functions, 8);
    }

    #[test]
    fn uploads_reach_the_recording_check_through_eventbridge_and_the_bucket_names_no_function() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let bucket = &doc["Resources"]["RecordingsBucket"]["Properties"];
        assert_eq!(
            bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"].as_bool(),
            Some(true)
        );
        assert!(
            !serde_norway::to_string(bucket).unwrap().contains("Function"),
            "no dependency cycle"
        );
        let check = &doc["Resources"]["RecordingCheckFunction"]["Properties"];
        let rule = &check["Events"]["RecordingLanded"];
        assert_eq!(rule["Type"].as_str(), Some("EventBridgeRule"));
        let pattern = serde_norway::to_string(&rule["Properties"]["Pattern"]).unwrap();
        assert!(
            pattern.contains("Object Created") && pattern.contains("prefix: recordings/"),
            "{pattern}"
        );
        let write = serde_norway::to_string(&doc["Resources"]["WriteCallFunction"]["Properties"]["Events"]).unwrap();
        for method in ["PUT", "PATCH", "DELETE", "POST"] {
            assert!(write.contains(&format!("Method: {method}")), "{method}");
        }
    }

    #[test]
    fn openapi_describes_exactly_the_templates_routes() {
        let openapi: serde_norway::Value = serde_norway::from_str(include_str!("../../openapi.yaml")).unwrap();
        let mut described = Vec::new();
        for (path, item) in openapi["paths"].as_mapping().unwrap() {
            for (method, _) in item.as_mapping().unwrap() {
                let method = method.as_str().unwrap();
                if ["get", "put", "post", "patch", "delete", "head", "options"].contains(&method) {
                    described.push(format!("{} {}", method.to_uppercase(), path.as_str().unwrap()));
                }
            }
        }
        described.sort();
        let mut routed: Vec<String> = super::routes(TEMPLATE_YAML)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        routed.sort();
        assert_eq!(described, routed);
        assert_eq!(routed.len(), 9, "{routed:?}");
    }

    #[test]
    fn a_route_reads_its_method_path_and_function() {
        let yaml = r#"
Resources:
  ReadFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Read: {Type: HttpApi, Properties: {Path: "/things/{id}", Method: get}}
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  HookFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hook: {Type: HttpApi, Properties: {Path: /hooks, Method: POST}}
"#;
        let routes = super::routes(yaml).unwrap();
        let got: Vec<(&str, &str, &str)> = routes
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.function.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("POST", "/hooks", "HookFunction"),
                ("GET", "/things/{id}", "ReadFunction")
            ]
        );
        let missing =
            "Resources:\n  F:\n    Properties:\n      Events:\n        E: {Type: HttpApi, Properties: {Path: /x}}\n";
        assert!(super::routes(missing).unwrap_err().to_string().contains("Method"));
    }

    #[test]
    fn the_webhook_receiver_may_write_recordings_but_not_delete_them() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let hook = &doc["Resources"]["WebhookFunction"]["Properties"];
        let policies = serde_norway::to_string(&hook["Policies"]).unwrap();
        assert!(!policies.contains("s3:DeleteObject"), "{policies}");
        assert!(policies.contains("recordings/*"), "{policies}");
    }

    /// Operations: logs, limits, failure capture, alarms and data protection, as template.yaml declares them.
    mod operations {
        use serde_norway::Value;

        fn doc() -> Value {
            serde_norway::from_str(super::TEMPLATE_YAML).unwrap()
        }

        fn of_type<'a>(doc: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
            doc["Resources"]
                .as_mapping()
                .unwrap()
                .iter()
                .filter(|(_, r)| r["Type"].as_str() == Some(kind))
                .map(|(name, r)| (name.as_str().unwrap().to_owned(), r))
                .collect()
        }

        /// The value inside `!Tag value`, when `v` carries that tag.
        fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
            match v {
                Value::Tagged(t) if t.tag == tag => Some(&t.value),
                _ => None,
            }
        }

        fn text(v: &Value) -> String {
            serde_norway::to_string(v).unwrap().trim().to_owned()
        }

        /// The queue named by `!GetAtt Queue.Arn`.
        fn queue_of_arn(v: &Value) -> Option<String> {
            tagged(v, "GetAtt")?.as_str()?.strip_suffix(".Arn").map(str::to_owned)
        }

        /// Queues watched by an alarm on their visible messages, with the alarm's threshold.
        fn alarmed_queues(doc: &Value) -> Vec<(String, f64)> {
            of_type(doc, "AWS::CloudWatch::Alarm")
                .into_iter()
                .filter(|(_, a)| a["Properties"]["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible"))
                .map(|(_, a)| {
                    let p = &a["Properties"];
                    assert_eq!(p["Namespace"].as_str(), Some("AWS/SQS"));
                    assert_eq!(p["ComparisonOperator"].as_str(), Some("GreaterThanOrEqualToThreshold"));
                    let dims = p["Dimensions"].as_sequence().unwrap();
                    assert_eq!(dims.len(), 1);
                    assert_eq!(dims[0]["Name"].as_str(), Some("QueueName"));
                    let queue = tagged(&dims[0]["Value"], "GetAtt").unwrap().as_str().unwrap();
                    let queue = queue.strip_suffix(".QueueName").unwrap().to_owned();
                    (queue, p["Threshold"].as_f64().unwrap())
                })
                .collect()
        }

        #[test]
        fn every_function_has_a_log_group_with_retention_and_reserved_concurrency() {
            let doc = doc();
            let mut logged = std::collections::BTreeMap::new();
            for (name, group) in of_type(&doc, "AWS::Logs::LogGroup") {
                let props = &group["Properties"];
                assert_eq!(
                    tagged(&props["RetentionInDays"], "Ref").and_then(Value::as_str),
                    Some("LogRetentionDays"),
                    "{name}"
                );
                if let Some(sub) = tagged(&props["LogGroupName"], "Sub") {
                    let function = sub.as_str().unwrap().strip_prefix("/aws/lambda/${").unwrap();
                    logged.insert(function.strip_suffix('}').unwrap().to_owned(), name);
                }
            }
            let functions = of_type(&doc, "AWS::Serverless::Function");
            assert_eq!(functions.len(), 8);
            for (name, function) in &functions {
                assert!(logged.contains_key(name), "{name} has no log group of its own");
                let props = &function["Properties"];
                assert!(
                    props.get("LoggingConfig").is_none(),
                    "{name}: its log group is the one Lambda names"
                );
                let reserved = tagged(&props["ReservedConcurrentExecutions"], "If")
                    .unwrap_or_else(|| panic!("{name} reserves no concurrency"))
                    .as_sequence()
                    .unwrap();
                assert_eq!(reserved[0].as_str(), Some("ReserveConcurrency"), "{name}");
                assert_eq!(text(&reserved[2]), "!Ref AWS::NoValue", "{name}");
                if name == "RecordingExpiryFunction" {
                    assert_eq!(reserved[1].as_u64(), Some(1), "one sweep at a time");
                } else {
                    assert!(
                        reserved[1].as_u64().is_some_and(|n| n >= 1)
                            || text(&reserved[1]) == "!Ref ApiFunctionConcurrency",
                        "{name}"
                    );
                }
            }
            assert_eq!(
                logged.len(),
                functions.len(),
                "a log group for a function that does not exist"
            );
            let globals = &doc["Globals"]["Function"];
            assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
            assert_eq!(globals["Tracing"].as_str(), Some("Active"));
        }

        #[test]
        fn asynchronous_functions_send_failed_runs_and_undelivered_events_to_alarmed_queues() {
            let doc = doc();
            let alarmed = alarmed_queues(&doc);
            let mut asynchronous = Vec::new();
            for (name, function) in of_type(&doc, "AWS::Serverless::Function") {
                let props = &function["Properties"];
                let events = props["Events"].as_mapping().into_iter().flatten();
                let mut is_async = false;
                for (_, event) in events {
                    if !matches!(event["Type"].as_str(), Some("Schedule" | "EventBridgeRule")) {
                        continue;
                    }
                    is_async = true;
                    let dlq = queue_of_arn(&event["Properties"]["DeadLetterConfig"]["Arn"])
                        .unwrap_or_else(|| panic!("{name}: an event without a dead-letter queue"));
                    assert!(
                        alarmed.iter().any(|(q, t)| *q == dlq && *t == 1.0),
                        "{name}: {dlq} unalarmed"
                    );
                }
                if !is_async {
                    continue;
                }
                let on_failure = &props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
                assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{name}");
                let queue = queue_of_arn(&on_failure["Destination"]).unwrap();
                assert_eq!(
                    doc["Resources"][queue.as_str()]["Type"].as_str(),
                    Some("AWS::SQS::Queue")
                );
                assert!(
                    alarmed.iter().any(|(q, t)| *q == queue && *t == 1.0),
                    "{name}: {queue} unalarmed"
                );
                asynchronous.push(name);
            }
            assert_eq!(asynchronous, ["RecordingCheckFunction", "RecordingExpiryFunction"]);
        }

        #[test]
        fn every_queue_that_only_collects_failures_has_an_alarm_and_the_work_queue_redrives_to_one() {
            let doc = doc();
            let alarmed = alarmed_queues(&doc);
            for (name, queue) in of_type(&doc, "AWS::SQS::Queue") {
                match queue["Properties"].get("RedrivePolicy") {
                    Some(redrive) => {
                        let dlq = queue_of_arn(&redrive["deadLetterTargetArn"]).unwrap();
                        assert!(alarmed.iter().any(|(q, _)| *q == dlq), "{name}'s {dlq}");
                    }
                    None => assert!(alarmed.iter().any(|(q, _)| *q == name), "{name} is unalarmed"),
                }
            }
        }

        #[test]
        fn every_function_has_an_alarm_on_its_errors_and_throttles_and_every_alarm_notifies_the_topic() {
            let doc = doc();
            let alarms = of_type(&doc, "AWS::CloudWatch::Alarm");
            for (name, alarm) in &alarms {
                let props = &alarm["Properties"];
                for actions in ["AlarmActions", "OKActions"] {
                    assert_eq!(
                        text(&props[actions]),
                        "!If\n- HasAlarmTopic\n- - !Ref AlarmTopicArn\n- !Ref AWS::NoValue",
                        "{name}.{actions}"
                    );
                }
            }
            let lambda_metrics = |alarm: &Value| -> Vec<(String, String)> {
                let Some(metrics) = alarm["Properties"]["Metrics"].as_sequence() else {
                    return Vec::new();
                };
                metrics
                    .iter()
                    .filter_map(|m| m.get("MetricStat"))
                    .map(|s| &s["Metric"])
                    .filter(|m| m["Namespace"].as_str() == Some("AWS/Lambda"))
                    .map(|m| {
                        let dims = m["Dimensions"].as_sequence().unwrap();
                        assert_eq!(dims[0]["Name"].as_str(), Some("FunctionName"));
                        let function = tagged(&dims[0]["Value"], "Ref").unwrap().as_str().unwrap();
                        (function.to_owned(), m["MetricName"].as_str().unwrap().to_owned())
                    })
                    .collect()
            };
            for (function, _) in of_type(&doc, "AWS::Serverless::Function") {
                let watched: Vec<String> = alarms
                    .iter()
                    .flat_map(|(_, a)| lambda_metrics(a))
                    .filter(|(f, _)| *f == function)
                    .map(|(_, m)| m)
                    .collect();
                assert!(watched.iter().any(|m| m == "Errors"), "{function}: errors unalarmed");
                assert!(
                    watched.iter().any(|m| m == "Throttles"),
                    "{function}: throttles unalarmed"
                );
            }
            let watched_namespaces: Vec<String> = alarms
                .iter()
                .flat_map(|(_, a)| {
                    let mut all = vec![text(&a["Properties"]["Namespace"])];
                    for m in a["Properties"]["Metrics"].as_sequence().into_iter().flatten() {
                        all.push(text(&m["MetricStat"]["Metric"]["Namespace"]));
                    }
                    all
                })
                .collect();
            for namespace in ["AWS/ApiGateway", "AWS/DynamoDB", "AWS/SQS"] {
                assert!(watched_namespaces.iter().any(|n| n == namespace), "{namespace}");
            }
        }

        #[test]
        fn the_expiry_alarm_reads_three_hourly_summaries_from_the_functions_namespace() {
            let alarmed = super::alarmed_metrics(super::TEMPLATE_YAML).unwrap();
            let expiry: Vec<_> = alarmed
                .iter()
                .filter(|m| m.alarm == "RecordingExpiryIncompleteAlarm")
                .collect();
            let names: Vec<&str> = expiry.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["ExpiryComplete", "ExpiryFailed"]);
            for m in &expiry {
                assert_eq!(m.dimensions, [("Function".to_owned(), "recording-expiry".to_owned())]);
            }
            let doc = doc();
            let props = &doc["Resources"]["RecordingExpiryIncompleteAlarm"]["Properties"];
            assert_eq!(props["EvaluationPeriods"].as_u64(), Some(3));
            assert_eq!(props["DatapointsToAlarm"].as_u64(), Some(3));
            assert_eq!(
                props["TreatMissingData"].as_str(),
                Some("breaching"),
                "no run at all counts"
            );
        }

        #[test]
        fn routes_are_throttled_and_every_request_is_access_logged_without_keys_or_query_strings() {
            let doc = doc();
            let api = &doc["Resources"]["HttpApi"]["Properties"];
            let limits = &api["DefaultRouteSettings"];
            assert_eq!(text(&limits["ThrottlingRateLimit"]), "!Ref ApiThrottleRateLimit");
            assert_eq!(text(&limits["ThrottlingBurstLimit"]), "!Ref ApiThrottleBurstLimit");
            let log = &api["AccessLogSettings"];
            assert_eq!(text(&log["DestinationArn"]), "!GetAtt ApiAccessLogGroup.Arn");
            let format = log["Format"].as_str().unwrap();
            let line: serde_json::Value = serde_json::from_str(format).expect("one JSON object a line");
            for field in ["requestId", "routeKey", "status", "latencyMs"] {
                assert!(line.get(field).is_some(), "{field}");
            }
            let lower = format.to_ascii_lowercase();
            for secret in ["header", "querystring", "authorization", "identity.apikey"] {
                assert!(!lower.contains(secret), "{secret} in the access log");
            }
        }

        #[test]
        fn the_table_and_the_bucket_outlive_the_stack() {
            let doc = doc();
            for name in [super::TABLE_RESOURCE, super::BUCKET_RESOURCE] {
                let resource = &doc["Resources"][name];
                assert_eq!(resource["DeletionPolicy"].as_str(), Some("Retain"), "{name}");
                assert_eq!(resource["UpdateReplacePolicy"].as_str(), Some("Retain"), "{name}");
            }
            let table = &doc["Resources"][super::TABLE_RESOURCE]["Properties"];
            assert_eq!(table["DeletionProtectionEnabled"].as_bool(), Some(true));
            let key = &doc["Resources"]["RecordingsKey"];
            assert_eq!(
                key["DeletionPolicy"].as_str(),
                Some("Retain"),
                "recordings stay readable"
            );
            assert_eq!(key["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
        }

        #[test]
        fn with_sse_kms_every_function_that_reads_or_writes_recordings_may_use_the_key() {
            let doc = doc();
            for (name, function) in of_type(&doc, "AWS::Serverless::Function") {
                let policies = text(&function["Properties"]["Policies"]);
                let touches_objects = policies.contains("s3:GetObject") || policies.contains("s3:PutObject");
                let may_use_key = policies.contains("!If\n  - EncryptWithKms\n  - !Ref RecordingsKeyAccess");
                assert_eq!(touches_objects, may_use_key, "{name}: {policies}");
            }
        }
    }
}
