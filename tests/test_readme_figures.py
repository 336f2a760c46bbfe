"""The README's headline figures are the committed outputs', not numbers typed in by hand: the
speed table is `bench/results/speed.md`'s, and "At a glance" and the accuracy table quote
`bench/results/speed.json`, `bench/results/peers.json` and the shipped model's report."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SPEED = json.loads((ROOT / "bench" / "results" / "speed.json").read_text())
REPORT = json.loads((ROOT / "models" / "default" / "report" / "report.json").read_text())
PEERS = json.loads((ROOT / "bench" / "results" / "peers.json").read_text())["models"]
MB = 1_000_000


def _table(first_header):
    """The README table whose header starts with `first_header`: {first cell: [other cells]}."""
    lines = README.split(f"| {first_header}", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return {row[0]: row[1:] for row in rows}


def _row(table, starts_with):
    (cells,) = [cells for first, cells in table.items() if first.startswith(starts_with)]
    return cells


def _backend(peer, peers):
    return "WASM" if peer is peers[0] else "WebGL"


def _percent(fraction):
    """A four-decimal fraction as a percentage to one decimal, halves rounded up as a reader would
    (binary floats put 0.6785 * 100 just below 67.85)."""
    from decimal import ROUND_HALF_UP, Decimal

    return f"{(Decimal(str(fraction)) * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def test_the_speed_table_is_the_committed_benchmarks():
    table = SPEED["markdown"].split("\n\n", 1)[0]
    assert table.startswith("| metric | facemood |")
    assert table in README


def test_at_a_glance_quotes_the_benchmark_and_the_report():
    glance = _table("| facemood | face-api, its best backend |")
    ours, peers = SPEED["summary"]["facemood"], [SPEED["summary"]["faceapi_wasm"], SPEED["summary"]["faceapi_webgl"]]
    test = REPORT["splits"]["test"]

    accuracy = _row(glance, "FER2013 PrivateTest accuracy as shipped")
    assert accuracy[0] == f"{_percent(test['quantized']['accuracy'])} ({_percent(test['quantized_deduplicated']['accuracy'])})"
    peer = {name: _percent(PEERS[name]["splits"]["PrivateTest"]["accuracy"]) for name in PEERS}
    assert accuracy[1] == f"{peer['faceapi_expression']} for its expression net (mini-Xception: {peer['mini_xception']})"
    assert (accuracy[3] == "yes") == (test["quantized"]["accuracy"] >= 0.72)

    weights = _row(glance, "Expression model's weights")
    assert weights[0] == f"{REPORT['weight_bytes']:,} bytes" and REPORT["weight_bytes"] <= 1_048_576
    assert weights[1] == f"{PEERS['faceapi_expression']['weight_bytes']:,} bytes"

    fastest = min(peers, key=lambda p: p["first_result_ms"])
    first = _row(glance, "Time to the first result")
    assert first[0] == f"{ours['first_result_ms']:.0f} ms"
    assert first[1] == f"{fastest['first_result_ms']:.0f} ms ({_backend(fastest, peers)})"
    ratio = fastest["first_result_ms"] / ours["first_result_ms"]
    assert f"({ratio:.2f}×)" in first[3] and (first[3].startswith("yes") == (ratio >= 1.3))

    photo = _row(glance, "Per photo, one face, warm")
    assert photo[0] == f"{ours['per_image_ms']:.0f} ms / {ours['per_image_second_visit_ms']:.0f} ms"
    assert photo[1] == f"{min(p['per_image_ms'] for p in peers):.0f} ms"
    assert ("**no** on a first visit" in photo[3]) == (ours["per_image_ms"] > 20)

    webcam = _row(glance, "Webcam")
    assert webcam[0] == f"{ours['webcam_fps']:.1f} frames a second"
    assert webcam[1] == f"{max(p['webcam_fps'] for p in peers):.1f}"

    sent = _row(glance, "Bytes before the first result")
    assert sent[0] == f"{ours['bytes_gzip'] / MB:.2f} MB"
    smallest = min(peers, key=lambda p: p["bytes_gzip"])
    assert sent[1] == f"{smallest['bytes_gzip'] / MB:.2f} MB ({_backend(smallest, peers)})"


def test_the_accuracy_table_quotes_the_report():
    table = _table("FER2013 split |")
    for split, starts_with in (("val", "PublicTest"), ("test", "PrivateTest")):
        figures = REPORT["splits"][split]
        cells = [re.sub(r"\*\*", "", cell) for cell in _row(table, starts_with)]
        assert cells[0] == _percent(figures["float"]["accuracy"])
        assert cells[1] == _percent(figures["quantized"]["accuracy"])
        assert cells[2].startswith(f"{_percent(figures['quantized_deduplicated']['accuracy'])} "
                                   f"({figures['duplicates_of_training_removed']} of 3,589 removed)")
        assert cells[3] == f"{figures['quantized']['macro_f1']:.3f}"
        assert cells[4] == _percent(figures["quantized_single_pass"]["accuracy"])
        assert cells[5] == _percent(figures["quantized_without_class_bias"]["accuracy"])


def test_the_repeated_runs_table_quotes_each_run():
    """The Speed section's runs side by side: this run's and the two repeated after it, each from
    its own committed speed.json."""
    table = _table("run | first result, cold: facemood / face-api WASM")
    sources = {"this one": ROOT / "bench" / "results" / "speed.json"}
    for n in (2, 3):
        sources[f"`speed-repeats/run-{n}`"] = ROOT / "bench" / "results" / "speed-repeats" / f"run-{n}" / "speed.json"
    assert {first.split(" (")[0] for first in table} == set(sources)
    for first, cells in table.items():
        result = json.loads(sources[first.split(" (")[0]].read_text())
        ours, wasm = result["summary"]["facemood"], result["summary"]["faceapi_wasm"]
        interval = result["meta"]["first_result_ratio_interval"]
        ratio = wasm["first_result_ms"] / ours["first_result_ms"]
        assert cells[0] == (f"{ours['first_result_ms']:.0f} / {wasm['first_result_ms']:.0f} ms "
                            f"({ratio:.2f}×; {interval['low']:.2f}–{interval['high']:.2f}×)")
        assert cells[1] == f"{ours['per_image_ms']:.0f} / {ours['per_image_second_visit_ms']:.0f} ms"
        assert cells[2] == f"{wasm['per_image_ms']:.0f} ms"
