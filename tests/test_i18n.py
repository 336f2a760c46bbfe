"""The page's language files: the same messages in every language, each with the same
placeholders, and every message the page's code or templates name present."""
import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "web"
LANGUAGES = sorted((WEB / "i18n").glob("*.json"))
# How the code names a message: t('key', setStatus('key', new CodedError('key', data-i18n="key" and
# its variants, en.key in the templates, and {"code": "key"} in a parameter the renderer gives the page.
NAMED = [re.compile(r"""\b(?:t|setStatus|CodedError)\(\s*'(\w+)'"""),
         re.compile(r"""data-i18n(?:-label)?="(\w+)\""""),
         re.compile(r"""\ben\.(?!json\b)(\w+)"""),
         re.compile(r'\{"code": "(\w+)"')]


def strings(path):
    return json.loads(path.read_text(encoding="utf-8"))


def placeholders(text):
    return sorted(set(re.findall(r"\{(\w+)\}", text)))


def test_there_are_languages_to_compare():
    assert [p.stem for p in LANGUAGES] == ["en", "ko"]


@pytest.mark.parametrize("path", LANGUAGES[1:], ids=lambda p: p.stem)
def test_every_language_has_every_message_with_the_same_placeholders(path):
    english, other = strings(LANGUAGES[0]), strings(path)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        if isinstance(text, str):
            assert placeholders(other[key]) == placeholders(text), key


def test_every_message_the_page_names_exists():
    english = strings(WEB / "i18n" / "en.json")
    sources = [*(WEB / "static" / "js").glob("*.js"), *(WEB / "templates").glob("*.j2"), WEB / "render.py"]
    named = {key for source in sources for pattern in NAMED for key in pattern.findall(source.read_text(encoding="utf-8"))}
    assert {"load_failed", "file_damaged", "batch_progress", "camera_denied", "backbone_blocks"} <= named  # the patterns find them
    assert sorted(named - set(english)) == []
