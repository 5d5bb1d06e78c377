//! The console's charts, drawn on the server as SVG by plotters: an elder's
//! hour × day activity, and the visit rate of each township by month.

use plotters::prelude::*;

use anxin_domain::time::{DAY_MS, HOUR_MS};
use anxin_domain::visits::{Month, RateFigures};
use anxin_store::HourActivity;

/// The hour × day activity chart of the `days` local days up to `now`, as
/// SVG drawn by plotters: one cell per hour, darker with more movement,
/// grey where no device reported.
pub fn activity_chart(
    activity: &[HourActivity],
    days: i64,
    offset: chrono::FixedOffset,
    now: i64,
    title: &str,
) -> String {
    let offset_ms = i64::from(offset.local_minus_utc()) * 1_000;
    let today_start = (now + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms;
    let first_day = today_start - (days - 1) * DAY_MS;
    let max_motion = activity.iter().map(|a| a.motion).max().unwrap_or(0).max(1);
    let day_label = |index: i64| {
        chrono::DateTime::from_timestamp_millis(first_day + index * DAY_MS + offset_ms)
            .map(|t| t.format("%m-%d").to_string())
            .unwrap_or_default()
    };
    let height = u32::try_from(40 + 18 * days).unwrap_or(300);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(48)
                .build_cartesian_2d(0i64..24i64, 0i64..days)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(12)
                .y_labels(usize::try_from(days).unwrap_or(14))
                .x_label_formatter(&|hour| format!("{hour:02}"))
                .y_label_formatter(&|row| day_label(days - 1 - row))
                .y_label_offset(-8)
                .label_style(("sans-serif", 11))
                .draw()?;
            // Row 0 is drawn at the bottom: put today on top.
            let mut cells = Vec::with_capacity(usize::try_from(days * 24).unwrap_or(0));
            for day in 0..days {
                for hour in 0..24 {
                    let start = first_day + day * DAY_MS + hour * HOUR_MS;
                    let found = activity.iter().find(|a| a.hour_start == start);
                    // Movement shades one green from pale to full, over white.
                    let color = match found {
                        _ if start > now => WHITE.mix(1.0),
                        None => RGBColor(225, 225, 225).mix(1.0),
                        Some(a) if a.motion == 0 && a.door_opens == 0 => RGBColor(232, 244, 234).mix(1.0),
                        Some(a) => {
                            let share = (a.motion + a.door_opens).min(max_motion) as f64 / max_motion as f64;
                            RGBColor(30, 130, 70).mix(0.25 + 0.75 * share.sqrt())
                        }
                    };
                    let row = days - 1 - day;
                    cells.push(Rectangle::new([(hour, row), (hour + 1, row + 1)], color.filled()));
                }
            }
            chart.draw_series(cells)?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(%error, "cannot draw the activity chart");
        }
    }
    // An accessible name for the picture.
    svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(title)), 1)
}

/// Text made safe inside HTML (element content or a quoted attribute).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The rate of each township by month, as an SVG line chart.
pub fn visit_rate_chart(history: &[(Month, Vec<(String, RateFigures)>)], title: &str) -> String {
    let mut townships: Vec<String> =
        history.iter().flat_map(|(_, regions)| regions.iter().map(|(r, _)| r.clone())).collect();
    townships.sort();
    townships.dedup();
    let months = i64::try_from(history.len()).unwrap_or(6);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(44)
                .build_cartesian_2d(0i64..(months - 1).max(1), 0i64..100i64)?;
            chart
                .configure_mesh()
                .x_labels(history.len())
                .x_label_formatter(&|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| history.get(i))
                        .map(|(m, _)| m.to_string())
                        .unwrap_or_default()
                })
                .y_label_formatter(&|p| format!("{p}%"))
                .label_style(("sans-serif", 11))
                .draw()?;
            for (index, township) in townships.iter().enumerate() {
                let color = Palette99::pick(index).to_rgba();
                let points: Vec<(i64, i64)> = history
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, regions))| {
                        let figures = regions.iter().find(|(r, _)| r == township)?.1.clone();
                        Some((i64::try_from(i).ok()?, figures.per_mille()? / 10))
                    })
                    .collect();
                let name = township.rsplit('/').next().unwrap_or(township).to_string();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(%error, "cannot draw the visit-rate chart");
        }
    }
    svg
}
