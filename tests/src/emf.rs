//! Reading CloudWatch embedded metric format (EMF) documents back: what CloudWatch would extract from a
//! function's output, one [`EmittedMetric`] per value.

use std::collections::BTreeMap;

use serde_json::Value;

/// One value of one metric, as CloudWatch would store it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmittedMetric {
    pub namespace: String,
    pub name: String,
    /// As the document declares it (`Count`, `Milliseconds`), if it does.
    pub unit: Option<String>,
    /// The names of the metric's dimension set, in the document's order.
    pub dimensions: Vec<String>,
    /// Each of those dimensions' value.
    pub dimension_values: BTreeMap<String, String>,
    pub value: f64,
}

impl EmittedMetric {
    /// The value of dimension `name`.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimension_values.get(name).map(String::as_str)
    }

    /// The dimension set as (name, value) pairs in the document's order, as an alarm names a metric's
    /// dimensions (`callrecords::template::AlarmedMetric`).
    pub fn dimension_pairs(&self) -> Vec<(String, String)> {
        self.dimensions
            .iter()
            .map(|n| (n.clone(), self.dimension_values.get(n).cloned().unwrap_or_default()))
            .collect()
    }
}

/// Every metric value in `lines` (a function's output: lines that are not EMF documents, such as log
/// lines, are passed over). A document's value may be one number or an array of them (one sample each);
/// a metric declared under several dimension sets counts once for each. Panics on a document that is not
/// valid EMF: a dimension or a declared metric without a value.
pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<EmittedMetric> {
    let mut out = Vec::new();
    for line in lines {
        let Ok(doc) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        assert!(doc["_aws"]["Timestamp"].is_u64(), "EMF without a Timestamp: {line}");
        for directive in directives {
            let namespace = directive["Namespace"]
                .as_str()
                .unwrap_or_else(|| panic!("no Namespace: {line}"));
            let sets = directive["Dimensions"]
                .as_array()
                .unwrap_or_else(|| panic!("no Dimensions: {line}"));
            let metrics = directive["Metrics"]
                .as_array()
                .unwrap_or_else(|| panic!("no Metrics: {line}"));
            for set in sets {
                let names: Vec<String> = set
                    .as_array()
                    .unwrap_or_else(|| panic!("a dimension set is a list: {line}"))
                    .iter()
                    .map(|d| d.as_str().expect("a dimension name").to_owned())
                    .collect();
                let values = names
                    .iter()
                    .map(|n| {
                        let v = doc[n.as_str()]
                            .as_str()
                            .unwrap_or_else(|| panic!("dimension {n} has no value: {line}"));
                        (n.clone(), v.to_owned())
                    })
                    .collect::<BTreeMap<_, _>>();
                for metric in metrics {
                    let name = metric["Name"]
                        .as_str()
                        .unwrap_or_else(|| panic!("a metric without a Name: {line}"));
                    let samples = match &doc[name] {
                        Value::Number(n) => vec![n.as_f64().expect("a number")],
                        Value::Array(all) => all.iter().map(|v| v.as_f64().expect("a number")).collect(),
                        other => panic!("metric {name} has no value ({other}): {line}"),
                    };
                    for value in samples {
                        out.push(EmittedMetric {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                            unit: metric["Unit"].as_str().map(str::to_owned),
                            dimensions: names.clone(),
                            dimension_values: values.clone(),
                            value,
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_every_dimension_set_is_read_and_log_lines_are_passed_over() {
        let lines = [
            r#"{"level":"INFO","message":"request"}"#,
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["Function","Route"],["Function"]],"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"Latency"}]}]},"Function":"get-call","Route":"GET /x","Requests":[1.0],"Latency":[2.5,3]}"#,
        ];
        let got = parse(lines);
        assert_eq!(got.len(), 6);
        assert_eq!(got[0].name, "Requests");
        assert_eq!(got[0].unit.as_deref(), Some("Count"));
        assert_eq!(got[0].dimensions, ["Function", "Route"]);
        assert_eq!(got[0].dimension("Route"), Some("GET /x"));
        assert_eq!(
            got[0].dimension_pairs(),
            [
                ("Function".to_owned(), "get-call".to_owned()),
                ("Route".to_owned(), "GET /x".to_owned())
            ]
        );
        assert_eq!(got[1].value, 2.5);
        assert_eq!(got[2].value, 3.0);
        assert_eq!(got[3].dimensions, ["Function"]);
    }
}
