// Charts with lightweight-charts (its standalone build, served from node_modules: window.LightweightCharts).
// Times on the axis are New York time; the data is UTC epoch seconds.

const NY = 'America/New_York';
const fmtTime = new Intl.DateTimeFormat('en-US', { timeZone: NY, hour: '2-digit', minute: '2-digit', hour12: false });
const fmtDay = new Intl.DateTimeFormat('en-US', { timeZone: NY, month: 'short', day: 'numeric' });
const fmtFull = new Intl.DateTimeFormat('en-US', { timeZone: NY, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });

export const BAR_SECONDS = { '1Min': 60, '5Min': 300, '15Min': 900, '30Min': 1800, '1Hour': 3600, '1Day': 86400 };

function LWC() {
  return /** @type {any} */ (window).LightweightCharts;
}

function baseOptions(el) {
  return {
    autoSize: true,
    layout: { background: { color: '#161d26' }, textColor: '#8593a3', fontSize: 11, attributionLogo: false },
    grid: { vertLines: { color: '#1f2a37' }, horzLines: { color: '#1f2a37' } },
    rightPriceScale: { borderColor: '#263241' },
    timeScale: {
      borderColor: '#263241',
      timeVisible: true,
      secondsVisible: false,
      tickMarkFormatter: (t, type) => (type <= 2 ? fmtDay : fmtTime).format(new Date(t * 1000)),
    },
    localization: { timeFormatter: (t) => `${fmtFull.format(new Date(t * 1000))} NY` },
    crosshair: { mode: 0 },
  };
}

/** One symbol's candles, volume and fill markers; `reasons` shown on hover. */
export class CandleChart {
  constructor(el, barSize) {
    const L = LWC();
    this.el = el;
    this.barSeconds = BAR_SECONDS[barSize] ?? 60;
    this.chart = L.createChart(el, baseOptions(el));
    this.candles = this.chart.addSeries(L.CandlestickSeries, {
      upColor: '#34d399', downColor: '#f87171', borderVisible: false, wickUpColor: '#34d399', wickDownColor: '#f87171',
    });
    this.volume = this.chart.addSeries(L.HistogramSeries, { priceScaleId: 'vol', priceFormat: { type: 'volume' }, color: '#334155' });
    this.chart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.06, bottom: 0.22 } });
    this.markersPlugin = L.createSeriesMarkers(this.candles, []);
    /** @type {Map<number, {time:number, side:string, text:string, reasons:string[]}>} */
    this.markers = new Map();
    this.lastTime = 0;
    this.count = 0;
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'tooltip';
    this.tooltip.hidden = true;
    el.appendChild(this.tooltip);
    this.chart.subscribeCrosshairMove((p) => this.hover(p));
  }

  /** Replaces the data with these bars (the /bars wire form, oldest first). */
  setBars(bars) {
    const candles = [];
    const volume = [];
    for (const b of bars) {
      const time = Math.floor(Date.parse(b.t) / 1000);
      candles.push({ time, open: b.o, high: b.h, low: b.l, close: b.c });
      volume.push({ time, value: b.v, color: b.c >= b.o ? '#1f5f4a' : '#6b2a2a' });
    }
    this.held = null;
    this.applyData(candles, volume);
  }

  /**
   * Replaces the data with bars in columns (GET /dashboard/bars: t in epoch seconds, oldest first).
   * With `tail`, only the newest `tail` bars are set now (what is in view, painted at once) and the
   * rest is held for completeHistory(), so the first paint does not wait for days of history.
   */
  setColumns(cols, { tail = 0 } = {}) {
    const n = cols.t.length;
    const candles = new Array(n);
    const volume = new Array(n);
    for (let i = 0; i < n; i++) {
      const time = cols.t[i];
      const o = cols.o[i];
      const c = cols.c[i];
      candles[i] = { time, open: o, high: cols.h[i], low: cols.l[i], close: c };
      volume[i] = { time, value: cols.v[i], color: c >= o ? '#1f5f4a' : '#6b2a2a' };
    }
    const cut = tail > 0 && n > tail ? n - tail : 0;
    this.held = cut > 0 ? { candles, volume } : null;
    this.applyData(cut > 0 ? candles.slice(cut) : candles, cut > 0 ? volume.slice(cut) : volume);
  }

  /** Sets the bars held back by setColumns(..., { tail }), keeping the time range in view. */
  completeHistory() {
    const held = this.held;
    if (!held) return;
    this.held = null;
    const scale = this.chart.timeScale();
    const range = scale.getVisibleRange();
    this.applyData(held.candles, held.volume);
    if (range) scale.setVisibleRange(range);
  }

  applyData(candles, volume) {
    this.candles.setData(candles);
    this.volume.setData(volume);
    const n = candles.length;
    this.firstTime = n ? candles[0].time : 0;
    this.lastTime = n ? candles[n - 1].time : 0;
    this.count = n;
    this.el.dataset.bars = String(n);
    this.refreshMarkers();
  }

  /** Adds or updates one bar (a `bar` event). Older bars than the last one are ignored. */
  update(b) {
    const time = Math.floor(Date.parse(b.t) / 1000);
    if (time < this.lastTime) return;
    if (time > this.lastTime) this.count++;
    const candle = { time, open: b.o, high: b.h, low: b.l, close: b.c };
    const vol = { time, value: b.v, color: b.c >= b.o ? '#1f5f4a' : '#6b2a2a' };
    this.candles.update(candle);
    this.volume.update(vol);
    if (this.held) {
      // Bars that come before the held history is set belong to it too.
      const h = this.held;
      const last = h.candles.length - 1;
      if (last >= 0 && h.candles[last].time === time) {
        h.candles[last] = candle;
        h.volume[last] = vol;
      } else {
        h.candles.push(candle);
        h.volume.push(vol);
      }
    }
    this.lastTime = time;
    this.el.dataset.bars = String(this.count);
    this.refreshMarkers();
  }

  /** A fill (or a filled order) as a marker on the bar it happened in. */
  addFill({ time, side, qty, price, reason }) {
    const t = Math.floor(Date.parse(time) / 1000 / this.barSeconds) * this.barSeconds;
    const key = t * 2 + (side === 'buy' ? 0 : 1);
    const m = this.markers.get(key) ?? { time: t, side, qty: 0, reasons: [] };
    m.qty += qty;
    m.reasons.push(`${side} ${qty} @ ${price.toFixed(2)}: ${reason}`);
    this.markers.set(key, m);
    this.refreshMarkers();
  }

  refreshMarkers() {
    const list = [...this.markers.values()]
      .filter((m) => m.time <= this.lastTime && m.time >= (this.firstTime ?? 0))
      .sort((a, b) => a.time - b.time)
      .map((m) => ({
        time: m.time,
        position: m.side === 'buy' ? 'belowBar' : 'aboveBar',
        shape: m.side === 'buy' ? 'arrowUp' : 'arrowDown',
        color: m.side === 'buy' ? '#34d399' : '#f87171',
        text: `${m.side === 'buy' ? 'B' : 'S'} ${m.qty}`,
      }));
    this.markersPlugin.setMarkers(list);
    this.el.dataset.markers = String(list.length);
  }

  hover(p) {
    const tip = this.tooltip;
    if (!p || p.time === undefined || !p.point) {
      tip.hidden = true;
      return;
    }
    const lines = [];
    for (const side of ['buy', 'sell']) {
      const m = this.markers.get(p.time * 2 + (side === 'buy' ? 0 : 1));
      if (m) lines.push(...m.reasons);
    }
    if (!lines.length) {
      tip.hidden = true;
      return;
    }
    tip.textContent = '';
    for (const l of lines) {
      const d = document.createElement('div');
      d.textContent = l;
      tip.appendChild(d);
    }
    tip.hidden = false;
    tip.style.left = `${Math.min(p.point.x + 12, this.el.clientWidth - 240)}px`;
    tip.style.top = `${Math.max(p.point.y - 10, 0)}px`;
  }

  remove() {
    this.chart.remove();
  }
}

/** A backtest's equity curve: [{t, equity}] with t ISO or epoch ms. */
export function equityChart(el, points) {
  const L = LWC();
  const chart = L.createChart(el, baseOptions(el));
  const s = chart.addSeries(L.AreaSeries, { lineColor: '#60a5fa', topColor: '#60a5fa55', bottomColor: '#60a5fa05', lineWidth: 2 });
  const data = [];
  let last = -Infinity;
  for (const p of points) {
    const ms = typeof p.t === 'number' ? p.t : Date.parse(p.t ?? p.time);
    const time = Math.floor(ms / 1000);
    const value = p.equity ?? p.value;
    if (!(time > last) || typeof value !== 'number') continue;
    last = time;
    data.push({ time, value });
  }
  s.setData(data);
  chart.timeScale().fitContent();
  return chart;
}
