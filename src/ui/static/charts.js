// @ts-check
// A time-series chart (uPlot, served from /ui/vendor/) that follows its container's width.
// Two series are told apart by dash as well as colour, for readers who do not see the colours.

/**
 * @typedef {{ label: string, color: string, dash?: number[], value: (point: import('./state.js').Point) => number | null }} SeriesSpec
 */

export class TimeChart {
  /**
   * @param {HTMLElement} container
   * @param {{ title: string, series: SeriesSpec[], format: (value: number) => string, ratio?: boolean }} spec
   */
  constructor(container, spec) {
    this.container = container;
    this.spec = spec;
    const format = spec.format;
    const style = getComputedStyle(document.documentElement);
    const colors = {
      text: style.getPropertyValue('--text').trim(),
      line: style.getPropertyValue('--line').trim(),
    };
    /** @type {uPlot.Options} */
    const options = {
      title: spec.title,
      width: Math.max(280, container.clientWidth),
      height: 220,
      series: [
        {},
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.dash ? { dash: s.dash } : {}),
          // Idle intervals have no ratio (null): the line goes across them.
          spanGaps: true,
          value: (/** @type {uPlot} */ _u, /** @type {number | null} */ v) => (v === null ? '–' : format(v)),
        })),
      ],
      // Canvas text does not follow CSS: the axes take the page's colours (dark scheme too).
      axes: [
        { stroke: colors.text, grid: { stroke: colors.line }, ticks: { stroke: colors.line } },
        {
          size: 72,
          stroke: colors.text,
          grid: { stroke: colors.line },
          ticks: { stroke: colors.line },
          values: (_u, values) => values.map((v) => format(v)),
        },
      ],
      scales: spec.ratio
        ? { y: { range: [0, 1] } }
        : { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      legend: { live: true },
    };
    this.plot = new uPlot(options, [[], ...spec.series.map(() => [])], container);
    new ResizeObserver(() =>
      this.plot.setSize({ width: Math.max(280, container.clientWidth), height: 220 }),
    ).observe(container);
  }

  /** @param {import('./state.js').Point[]} points */
  set(points) {
    const xs = points.map((p) => p.t / 1000);
    const ys = this.spec.series.map((s) => points.map((p) => s.value(p)));
    this.plot.setData(/** @type {uPlot.AlignedData} */ ([xs, ...ys]));
  }
}
