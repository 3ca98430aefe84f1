//! The click event and its text forms.

use microbatch::log::LogRecord;
use serde::{Deserialize, Serialize};

/// What the user did.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[rkyv(derive(Debug))]
pub enum Action {
    /// Opened the page.
    View,
    /// Clicked something on it.
    Click,
    /// Put an item in the cart.
    AddToCart,
    /// Bought.
    Purchase,
}

impl Action {
    /// The name in CSV and JSON: `view`, `click`, `add_to_cart`, `purchase`.
    pub fn name(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Click => "click",
            Action::AddToCart => "add_to_cart",
            Action::Purchase => "purchase",
        }
    }

    /// The action named `name`.
    pub fn from_name(name: &str) -> Option<Action> {
        [
            Action::View,
            Action::Click,
            Action::AddToCart,
            Action::Purchase,
        ]
        .into_iter()
        .find(|action| action.name() == name)
    }
}

/// One event of the click stream.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Click {
    /// The user.
    pub user: u64,
    /// The page.
    pub page: u64,
    /// When it happened, ms since the Unix epoch.
    pub event_time_ms: u64,
    /// Time spent on the page, ms.
    pub dwell_ms: u32,
    /// What the user did.
    pub action: Action,
}

impl LogRecord for Click {
    const SCHEMA: &'static str =
        "microbatch.clickstream.v1(user u64, page u64, event_time_ms u64, dwell_ms u32, action u8)";
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 5] = ["user", "page", "event_time_ms", "dwell_ms", "action"];

impl Click {
    /// Reads one CSV line's fields (`user,page,event_time_ms,dwell_ms,action`).
    pub fn from_csv_fields(fields: &[&str]) -> Result<Click, String> {
        if fields.len() != CSV_HEADER.len() {
            return Err(format!(
                "{} fields; expected 5 ({})",
                fields.len(),
                CSV_HEADER.join(",")
            ));
        }
        let number = |index: usize| {
            fields[index].parse::<u64>().map_err(|_| {
                format!(
                    "{} `{}` is not an unsigned integer",
                    CSV_HEADER[index], fields[index]
                )
            })
        };
        let dwell_ms = u32::try_from(number(3)?)
            .map_err(|_| format!("dwell_ms `{}` is above {}", fields[3], u32::MAX))?;
        let action = Action::from_name(fields[4]).ok_or_else(|| {
            format!(
                "action `{}` is not one of view, click, add_to_cart, purchase",
                fields[4]
            )
        })?;
        Ok(Click {
            user: number(0)?,
            page: number(1)?,
            event_time_ms: number(2)?,
            dwell_ms,
            action,
        })
    }

    /// The CSV line of this click, without a newline.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.user,
            self.page,
            self.event_time_ms,
            self.dwell_ms,
            self.action.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_read_back() {
        let click = Click {
            user: 7,
            page: 3,
            event_time_ms: 1_700_000_000_000,
            dwell_ms: 4200,
            action: Action::AddToCart,
        };
        let line = click.to_csv();
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(Click::from_csv_fields(&fields).unwrap(), click);
        let json = serde_json::to_string(&click).unwrap();
        assert!(json.contains("\"action\":\"add_to_cart\""), "{json}");
        assert_eq!(serde_json::from_str::<Click>(&json).unwrap(), click);
    }

    #[test]
    fn bad_fields_are_named() {
        let error = Click::from_csv_fields(&["1", "2", "3", "4", "jump"]).unwrap_err();
        assert!(error.contains("action `jump`"), "{error}");
        let error = Click::from_csv_fields(&["1", "x", "3", "4", "view"]).unwrap_err();
        assert!(error.contains("page `x`"), "{error}");
        let error = Click::from_csv_fields(&["1", "2", "3", "5000000000", "view"]).unwrap_err();
        assert!(error.contains("dwell_ms"), "{error}");
        assert!(Click::from_csv_fields(&["1", "2"]).is_err());
    }
}
