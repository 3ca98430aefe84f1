//! The page: one HTML file (`cli/assets/ui/page.html`) with its script,
//! and the vendored uPlot chart library (`cli/assets/uplot/`, MIT) inlined,
//! so that it needs no network at all. Served live, it reads the events
//! from `/events`; saved, it carries them inside.

use std::sync::Arc;

const TEMPLATE: &str = include_str!("../../assets/ui/page.html");
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");

/// The page with `events` (a JavaScript expression) as its events: `null`
/// to read them live.
fn with_events(events: &str) -> String {
    TEMPLATE
        .replace("/*EVENTS*/null", events)
        .replace("/*UPLOT_CSS*/", UPLOT_CSS)
        .replace("/*UPLOT_JS*/", UPLOT_JS)
}

/// The page as the server sends it.
pub(super) fn live() -> String {
    with_events("null")
}

/// The page with every one of `events` inside: opens with no server.
pub(super) fn saved(events: &[Arc<str>]) -> String {
    let mut array = String::from("[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            array.push_str(",\n");
        }
        // Inside a <script>, "</" could end it: JSON allows "<\/".
        array.push_str(&event.replace("</", "<\\/"));
    }
    array.push(']');
    with_events(&array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_page_carries_its_events_and_the_chart_library() {
        let events: Vec<Arc<str>> = vec![r#"{"type":"start","data":{"name":"</script>"}}"#.into()];
        let page = saved(&events);
        assert!(page.contains(r#"{"type":"start","data":{"name":"<\/script>"}}"#));
        assert!(page.contains("uPlot"), "the library is inlined");
        assert!(!page.contains("/*UPLOT_JS*/") && !page.contains("/*EVENTS*/"));
        assert!(live().contains("const EVENTS = null"));
    }
}
