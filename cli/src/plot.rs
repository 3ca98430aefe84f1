//! The sweep's SVG plots: latency percentiles and throughput against the
//! batch interval, both on log axes. Drawn with plotters' SVG backend,
//! which needs no font file or system library.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::commands::sweep::{knee, SweepResult, SweepRow};
use crate::driver::error::RunError;

const SIZE: (u32, u32) = (900, 560);

/// A latency line: its label, its column and its colour.
type Series = (&'static str, fn(&SweepRow) -> u64, RGBColor);

fn plot_error(path: &Path, error: impl std::fmt::Display) -> RunError {
    RunError::Output {
        what: path.display().to_string(),
        message: format!("cannot draw the plot: {error}"),
    }
}

/// The x range of the intervals in `rows`, widened a little on each side.
fn interval_range(rows: &[&SweepRow]) -> std::ops::Range<f64> {
    let least = rows
        .iter()
        .map(|r| r.interval_ms)
        .fold(f64::INFINITY, f64::min);
    let most = rows.iter().map(|r| r.interval_ms).fold(0.0, f64::max);
    least / 1.5..most * 1.5
}

/// Draws `latency.svg` and `throughput.svg` into `dir`; returns their paths.
pub fn draw(result: &SweepResult, dir: &Path) -> Result<Vec<PathBuf>, RunError> {
    let latency = dir.join("latency.svg");
    let throughput = dir.join("throughput.svg");
    draw_latency(result, &latency)?;
    draw_throughput(result, &throughput)?;
    Ok(vec![latency, throughput])
}

fn draw_latency(result: &SweepResult, path: &Path) -> Result<(), RunError> {
    let n = result.max_batch_records()[0];
    let rate = result.rates[0];
    let rows = result.series(n, &rate.to_string());
    if rows.is_empty() {
        return Ok(());
    }
    let auto = result.adaptive(n, &rate.to_string());
    // The axes also hold the adaptive interval's point.
    let all: Vec<&SweepRow> = rows.iter().copied().chain(auto).collect();
    let ms = |nanos: u64| (nanos as f64 / 1e6).max(1e-3);
    let series: [Series; 4] = [
        ("record p50", |r| r.record_p50_ns, BLUE),
        ("record p99", |r| r.record_p99_ns, RED),
        ("record p99.9", |r| r.record_p999_ns, MAGENTA),
        ("seal-to-result p99", |r| r.seal_to_result_p99_ns, GREEN),
    ];
    let lowest = all
        .iter()
        .flat_map(|r| series.iter().map(move |s| ms((s.1)(r))))
        .fold(f64::INFINITY, f64::min);
    let highest = all
        .iter()
        .flat_map(|r| series.iter().map(move |s| ms((s.1)(r))))
        .fold(0.0, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Latency against batch interval at {} offered",
                super::report::rate(rate as f64)
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            interval_range(&all).log_scale(),
            (lowest / 2.0..highest * 2.0).log_scale(),
        )
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc("batch interval (ms, log)")
        .y_desc("latency (ms, log)")
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for (label, value, color) in series {
        let points = rows.iter().map(|r| (r.interval_ms, ms(value(r)))).collect();
        line(&mut chart, path, points, color.to_rgba(), label.to_owned())?;
    }
    if let Some(auto) = auto {
        // The adaptive interval's choice beside the fixed curve: its median
        // interval and its record p99.
        let point = (auto.interval_ms, ms(auto.record_p99_ns));
        chart
            .draw_series(std::iter::once(Cross::new(point, 7, BLACK.stroke_width(3))))
            .map_err(|e| plot_error(path, e))?
            .label("auto interval: record p99")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    }
    legend(&mut chart, path, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(|e| plot_error(path, e))
}

/// Draws one labelled line with a dot at each point.
fn line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    path: &Path,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    label: String,
) -> Result<(), RunError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(|e| plot_error(path, e))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )
        .map_err(|e| plot_error(path, e))?;
    Ok(())
}

/// Draws the legend of every labelled line at `position`.
fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    path: &Path,
    position: SeriesLabelPosition,
) -> Result<(), RunError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))
}

fn draw_throughput(result: &SweepResult, path: &Path) -> Result<(), RunError> {
    let settings = result.max_batch_records();
    let all = result.series(settings[0], "max");
    if all.is_empty() {
        return Ok(());
    }
    let best = result
        .rows
        .iter()
        .filter(|r| r.is_throughput())
        .map(|r| r.throughput_rps / 1e6)
        .fold(0.0, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput against batch interval (maximum rate)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(interval_range(&all).log_scale(), 0.0..best * 1.15)
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc("batch interval (ms, log)")
        .y_desc("throughput (M records/s)")
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for (index, n) in settings.iter().enumerate() {
        let rows = result.series(*n, "max");
        let color = Palette99::pick(index).to_rgba();
        let points = rows
            .iter()
            .map(|r| (r.interval_ms, r.throughput_rps / 1e6))
            .collect();
        let label = n.map_or("max_batch_records off".into(), |n| {
            format!("max_batch_records {n}")
        });
        line(&mut chart, path, points, color, label)?;
        if let Some((interval_ms, throughput)) = knee(&rows) {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("knee: {interval_ms} ms"),
                    (interval_ms, throughput / 1e6 * 0.93),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                )))
                .map_err(|e| plot_error(path, e))?;
        }
    }
    legend(&mut chart, path, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(|e| plot_error(path, e))
}
