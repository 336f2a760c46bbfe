"""The pages pass axe-core's accessibility rules (WCAG 2 A and AA: contrast, names, roles, nesting)
as a person meets them: the main page before and after a photo and while several are read, in
English and in Korean, with the webcam running, the model card and the backbone comparison. axe-core comes from npm (node_modules) and is injected into the
page by the test only; the site never ships it."""
from pathlib import Path

import pytest

from conftest import ready_page, wait_until
from test_browser_ui import GATE_DECODING, fake_camera_browser, start_camera, write_group_photo

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def violations(page):
    """axe-core's violations on the page as it is now: [(rule, impact, first offending element)]."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } })
        .then((r) => r.violations.map((v) => [v.id, v.impact, v.nodes[0].target.join(' ')]))""", RULES)
    return found


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_the_main_page_has_no_accessibility_violations(shipped_site, browser, tmp_path, locale):
    # The page's Content-Security-Policy refuses inline scripts; the test bypasses it to inject axe.
    with ready_page(browser, shipped_site["url"], locale=locale, bypass_csp=True) as page:
        assert violations(page) == []
        page.set_input_files("#file-input", str(write_group_photo(tmp_path / "group.png")))
        page.wait_for_selector("article.result")
        page.click(".face-box[data-face='1']")
        assert violations(page) == []
        page.evaluate(GATE_DECODING)  # several photos being read: the progress and its stop button
        page.set_input_files("#file-input", [str(tmp_path / "group.png")] * 2)
        wait_until(page, "decodeGate.waiting.length === 1 && !document.getElementById('batch').hidden")
        assert violations(page) == []


def test_the_webcam_view_has_no_accessibility_violations(shipped_site, playwright, tmp_path):
    browser = fake_camera_browser(playwright, tmp_path)
    try:
        page = browser.new_context(bypass_csp=True).new_page()
        start_camera(page, shipped_site["url"])
        assert violations(page) == []
    finally:
        browser.close()


@pytest.mark.parametrize("name", ["model.html", "compare.html"])
def test_the_model_card_and_the_comparison_have_no_accessibility_violations(shipped_site, browser, name):
    assert (shipped_site["dist"] / name).is_file()
    with ready_page(browser, shipped_site["url"] + name, wait_ready=False, bypass_csp=True) as page:
        assert violations(page) == []


def test_a_contrast_failure_is_reported(shipped_site, browser):
    """The check can fail: pale grey text on the page's background is caught."""
    with ready_page(browser, shipped_site["url"], bypass_csp=True) as page:
        page.evaluate("document.querySelector('.tagline').style.color = '#c8c8c8'")
        assert ("color-contrast", "serious", ".tagline") in [tuple(v) for v in violations(page)]
