//! `report.svg`: a run's figures as log-log charts, one panel each: sequential p50 latency and
//! throughput by payload (every implementation), and stream throughput by item size (the
//! framework's server only: the others cannot stream). A panel with nothing measured (with
//! `--only`) is left out.

use std::path::Path;

use plotters::prelude::*;

use crate::large_payload;
use crate::report::Report;
use crate::subject::{Implementation, Transport};

/// Looks up one figure by implementation, transport and size (payload or item).
type Lookup<'a> = dyn Fn(Implementation, Transport, usize) -> Option<f64> + 'a;

/// One line: whose figures, its colour, and whether it is solid (UDS) or thin (TCP).
type Series = (Implementation, Transport, RGBColor, bool);

const RPC: RGBColor = RGBColor(0, 90, 200);
const RPC_SHM: RGBColor = RGBColor(200, 0, 60);
const RPC_CT: RGBColor = RGBColor(0, 150, 110);
const RAW: RGBColor = RGBColor(120, 120, 120);
const TARPC: RGBColor = RGBColor(220, 90, 0);
const TARPC_CT: RGBColor = RGBColor(150, 40, 160);

/// The lines of the calls' panels.
const CALL_SERIES: [Series; 9] = [
    (Implementation::Rpc, Transport::Uds, RPC, true),
    (Implementation::Rpc, Transport::Tcp, RPC, false),
    (Implementation::RpcShm, Transport::Uds, RPC_SHM, true),
    (Implementation::Raw, Transport::Uds, RAW, true),
    (Implementation::Raw, Transport::Tcp, RAW, false),
    (Implementation::Tarpc, Transport::Uds, TARPC, true),
    (Implementation::Tarpc, Transport::Tcp, TARPC, false),
    (Implementation::TarpcCt, Transport::Uds, TARPC_CT, true),
    (Implementation::TarpcCt, Transport::Tcp, TARPC_CT, false),
];

/// The lines of the stream panel: the framework's two configurations.
const STREAM_SERIES: [Series; 4] = [
    (Implementation::Rpc, Transport::Uds, RPC, true),
    (Implementation::Rpc, Transport::Tcp, RPC, false),
    (Implementation::RpcCt, Transport::Uds, RPC_CT, true),
    (Implementation::RpcCt, Transport::Tcp, RPC_CT, false),
];

/// Width of one panel, pixels.
const PANEL_WIDTH: u32 = 700;

/// One chart: its axes, its lines, and where its figures come from.
struct Panel<'a> {
    caption: String,
    x_desc: &'static str,
    y_desc: &'static str,
    /// The sizes on the x axis.
    xs: Vec<usize>,
    series: &'static [Series],
    value: Box<Lookup<'a>>,
}

/// A byte count on a log axis, whose ticks fall on powers of ten: `100 B`, `10 kB`, `1 MB`.
fn axis_bytes(bytes: f64) -> String {
    match bytes {
        b if b >= 1e6 => format!("{} MB", (b / 1e6).round()),
        b if b >= 1e3 => format!("{} kB", (b / 1e3).round()),
        b => format!("{} B", b.round()),
    }
}

impl Report {
    /// The panels this run has figures for.
    fn panels(&self) -> Vec<Panel<'_>> {
        let mut panels = Vec::new();
        if self.settings.calls {
            let k = *self.settings.in_flight.last().unwrap_or(&1);
            panels.push(Panel {
                caption: "sequential p50 latency by payload".to_owned(),
                x_desc: "payload (bytes, log)",
                y_desc: "p50 latency (us, log)",
                xs: self.settings.payloads.clone(),
                series: &CALL_SERIES,
                value: Box::new(|i, t, p| self.p50(i, t, p)),
            });
            panels.push(Panel {
                caption: format!("throughput, {k} in flight on 1 connection"),
                x_desc: "payload (bytes, log)",
                y_desc: "calls/s (log)",
                // Large payloads are measured for latency only.
                xs: (self.settings.payloads.iter().copied())
                    .filter(|&p| !large_payload::is_large(p))
                    .collect(),
                series: &CALL_SERIES,
                value: Box::new(move |i, t, p| self.rate(i, t, p, k, 1)),
            });
        }
        if !self.stream_rate.is_empty() {
            let mut items = self.settings.stream_items.clone();
            items.sort_unstable();
            panels.push(Panel {
                caption: "stream throughput, one connection (rpc only)".to_owned(),
                x_desc: "item (bytes, log)",
                y_desc: "items/s (log)",
                xs: items,
                series: &STREAM_SERIES,
                value: Box::new(|i, t, item| {
                    self.stream_rate
                        .iter()
                        .find(|r| r.implementation == i && r.transport == t && r.item == item)
                        .map(|r| r.items_per_sec)
                }),
            });
        }
        panels
    }

    /// Writes the charts to `path`.
    pub(crate) fn draw(&self, path: &Path) -> anyhow::Result<()> {
        let panels = self.panels();
        let width = PANEL_WIDTH * (panels.len().max(1) as u32);
        let root = SVGBackend::new(path, (width, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(50);
        title.titled(
            &format!(
                "rpc-bench: UDS vs TCP loopback — {} ({} cores), {}",
                self.machine.cpu, self.machine.cores, self.machine.kernel
            ),
            ("sans-serif", 18),
        )?;
        let areas = body.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(&panels) {
            draw_panel(area, panel)?;
        }
        root.present()?;
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel<'_>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let xs = &panel.xs;
    let x_range = (xs.first().copied().unwrap_or(64) as f64 / 1.5)
        ..(xs.last().copied().unwrap_or(1 << 20) as f64 * 1.5);
    let values: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|(i, t, _, _)| xs.iter().filter_map(|&x| (panel.value)(*i, *t, x)))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .min(1.0e9)
        / 1.5;
    let hi = values.iter().cloned().fold(0.0, f64::max).max(lo * 10.0) * 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.log_scale(), (lo.max(1e-3)..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .x_label_formatter(&|v| axis_bytes(*v))
        .draw()?;
    for &(imp, tr, color, solid) in panel.series {
        let points: Vec<(f64, f64)> = xs
            .iter()
            .filter_map(|&x| (panel.value)(imp, tr, x).map(|v| (x as f64, v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: solid,
            stroke_width: if solid { 3 } else { 1 },
        };
        chart
            .draw_series(LineSeries::new(points.clone(), style))?
            .label(format!("{} {}", imp.name(), tr.name()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, style)))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
