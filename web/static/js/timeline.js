// Live camera: face 1's expression over the last seconds, one column per tenth of a second, each
// column its class probabilities stacked in the classes' colours (as everywhere on the page).
// Frames are averaged per column, so the chart shows the trend rather than every frame's jitter,
// and drawing it costs the same at any frame rate. A column without a face stays empty.
import { labelText } from './i18n.js';

const STEP_MS = 100;
const BRIDGE_STEPS = 5;  // up to half a second between two frames still draws as one run

export class ExpressionTimeline {
  constructor(canvas, colourOf, seconds = 10) {
    this.canvas = canvas;
    this.colourOf = colourOf;
    this.columns = (seconds * 1000) / STEP_MS;
    this.steps = [];  // {slot, sums, count}, oldest first
  }

  clear() {
    this.steps = [];
    this.canvas.dataset.columns = '0';
  }

  // `scores`: {label: p} of face 1 in the frame taken at `time` (ms), or null when it had no face.
  add(time, scores) {
    const slot = Math.floor(time / STEP_MS);
    let step = this.steps[this.steps.length - 1];
    if (!step || step.slot !== slot) {
      step = { slot, sums: {}, count: 0 };
      this.steps.push(step);
    }
    if (scores) {
      for (const [label, p] of Object.entries(scores)) step.sums[label] = (step.sums[label] ?? 0) + p;
      step.count += 1;
    }
    while (this.steps[0].slot <= slot - this.columns) this.steps.shift();
  }

  draw(labels) {
    const { canvas } = this;
    const scale = window.devicePixelRatio || 1;
    const width = Math.round(canvas.clientWidth * scale);
    const height = Math.round(canvas.clientHeight * scale);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    // The legend on the right, in the reader's language; the chart fills the rest.
    const fontPx = Math.round(11 * scale);
    ctx.font = `${fontPx}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    const swatch = fontPx;
    const legendWidth = Math.max(...labels.map((label) => ctx.measureText(labelText(label)).width)) + swatch * 2;
    const rowHeight = height / labels.length;
    labels.forEach((label, i) => {
      const y = i * rowHeight + rowHeight / 2;
      ctx.fillStyle = this.colourOf(labels, label);
      ctx.fillRect(width - legendWidth, y - swatch / 2, swatch, swatch);
      ctx.fillStyle = '#5b6475';
      ctx.fillText(labelText(label), width - legendWidth + swatch * 1.5, y);
    });
    const chartWidth = width - legendWidth - swatch;
    const columnWidth = chartWidth / this.columns;
    ctx.fillStyle = '#e9ecf2';  // the chart's extent, so the seconds before the first face read as empty
    ctx.fillRect(0, 0, Math.round(chartWidth), height);
    const newest = this.steps.length ? this.steps[this.steps.length - 1].slot : 0;
    let drawn = 0;
    this.steps.forEach((step, i) => {
      if (step.count === 0) return;
      // A tenth of a second in which no frame finished (a slow frame) is not a tenth without a
      // face: a short gap after a column with a face is filled by the next one.
      const previous = this.steps[i - 1];
      const bridged = previous && previous.count > 0 && step.slot - previous.slot <= BRIDGE_STEPS;
      const from = bridged ? previous.slot + 1 : step.slot;
      // Whole-pixel edges: fractional ones leave faint seams between columns and bands.
      const right = Math.round(chartWidth - (newest - step.slot) * columnWidth);
      const left = Math.round(chartWidth - (newest - from + 1) * columnWidth);
      let cumulative = 0;
      // The first class at the top, as the legend lists them.
      for (const label of labels) {
        const top = Math.round(cumulative * height);
        cumulative += (step.sums[label] ?? 0) / step.count;
        ctx.fillStyle = this.colourOf(labels, label);
        ctx.fillRect(left, top, right - left, Math.round(cumulative * height) - top);
      }
      drawn += 1;
    });
    canvas.dataset.columns = String(drawn);
    canvas.dataset.chartWidth = String(Math.round(chartWidth));
  }
}
