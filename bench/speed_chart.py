"""The speed benchmark's runs as a picture (speed.png beside speed.md): every cold run's time to
its first result, and the spread of the warm times per photo, for each page, on log scales with
the targets drawn in. Medians hide how far runs on a shared machine spread; dots and boxes show it."""
import io

FIRST_RESULT_TARGET_MS = 500
PER_PHOTO_TARGET_MS = 20
COLOURS = {"facemood": "#1f6feb", "faceapi_wasm": "#d4722b", "faceapi_webgl": "#8a8a8a"}


def chart_png(result, titles):
    """PNG bytes for a speed.json `result`; `titles`: each page's name in the results -> its label."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on build machines
    import matplotlib.pyplot as plt

    names = [name for name in COLOURS if result["cold_runs"].get(name)]
    fig, (cold_ax, warm_ax) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)

    # Cold: one dot per run, a bar at the median.
    for row, name in enumerate(reversed(names)):
        times = [run["first_result_ms"] for run in result["cold_runs"][name]]
        cold_ax.scatter(times, [row] * len(times), color=COLOURS[name], alpha=0.7, s=22, zorder=3)
        median = result["summary"][name]["first_result_ms"]
        cold_ax.plot([median, median], [row - 0.3, row + 0.3], color=COLOURS[name], linewidth=2.5, zorder=4)
    cold_ax.set_yticks(range(len(names)), [titles[name] for name in reversed(names)])
    _finish(cold_ax, FIRST_RESULT_TARGET_MS, f"Time to the first result, cold ({result['meta']['runs']} runs; bar: median)",
            "ms from navigation, log scale")

    # Warm: a box per page and visit (whiskers: 5th-95th percentile).
    series = []
    for name in names:
        series.append((titles[name] + (", first visit" if name == "facemood" else ""), name,
                       result["warm"].get(name, {}).get("ms")))
        if name == "facemood" and result.get("warm_second_visit", {}).get(name):
            series.append((titles[name] + ", second visit", name, result["warm_second_visit"][name]["ms"]))
    series = [s for s in series if s[2]][::-1]
    boxes = warm_ax.boxplot([s[2] for s in series], orientation="horizontal", whis=(5, 95), showfliers=False, widths=0.55,
                            patch_artist=True, medianprops={"color": "black"})
    for patch, (_, name, _) in zip(boxes["boxes"], series):
        patch.set_facecolor(COLOURS[name])
        patch.set_alpha(0.6)
    warm_ax.set_yticks(range(1, len(series) + 1), [label for label, _, _ in series])
    _finish(warm_ax, PER_PHOTO_TARGET_MS, "Per photo, one face, warm", "ms, log scale")

    meta = result["meta"]
    served = "with the cross-origin isolation headers" if meta.get("isolated") else "without the isolation headers"
    fig.suptitle(f"{meta['command']} on {meta['date']}: headless Chromium, {meta['cpus']} CPU cores, every page "
                 f"served {served}", fontsize=8, color="#555555", y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _finish(ax, target, title, xlabel):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    # Milliseconds as people read them (20, 50, 100, 200 ...), not as powers of ten.
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(target, color="#2da44e", linestyle="--", linewidth=1.2, zorder=2)
    ax.annotate(f"target {target} ms", (target, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                textcoords="offset points", fontsize=8, color="#2da44e")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, which="both", axis="x")
