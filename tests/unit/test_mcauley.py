"""McAuley 2014 parsing: every line is either a row or a reject with a reason and line_no."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest

from liger_core.errors import ConfigError, DataError
from liger_core.data.mcauley import fetch_mcauley, mcauley_urls, read_meta, read_reviews

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mcauley"


def _gz(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def _fixture_gz(folder: Path, name: str) -> Path:
    """The committed plain-text fixture, gzip-compressed like the real files."""
    return _gz(folder / f"{name}.gz", (FIXTURES / name).read_bytes().splitlines())


def test_urls_follow_the_category_files_layout() -> None:
    assert mcauley_urls("Toys_and_Games", "http://h/productGraph/categoryFiles/") == (
        "http://h/productGraph/categoryFiles/reviews_Toys_and_Games_5.json.gz",
        "http://h/productGraph/categoryFiles/meta_Toys_and_Games.json.gz",
    )
    with pytest.raises(ConfigError, match=r"'Beauty/\.\.'"):
        mcauley_urls("Beauty/..", "http://h")


def test_meta_fixture_parses_single_quotes_nested_categories_and_unicode(tmp_path: Path) -> None:
    rows, rejected = read_meta(_fixture_gz(tmp_path, "meta_Tiny.json"))

    assert rejected.empty
    assert rows.columns.tolist() == ["item_id", "title", "brand", "categories", "price", "description", "line_no"]
    assert rows["line_no"].dtype == "int64"
    assert rows.to_dict("records") == [
        {
            "item_id": "0205616461",
            "title": "Bio-Active Anti-Aging Serum (Firming Ultra-Hydrating Serum)",
            "brand": None,
            "categories": "Beauty > Skin Care > Face > Creams & Moisturizers",
            "price": None,
            "description": "As we age, our once youthful skin loses its radiance.",
            "line_no": 1,
        },
        {
            "item_id": "7806397051",
            "title": "Crème de la crème – palette",
            "brand": "Lilé",
            "categories": "Beauty > Makeup > Face | Beauty > Tools & Accessories",
            "price": "5.99",
            "description": "Don't miss it: 日本製",
            "line_no": 2,
        },
        {
            "item_id": "B00004TMFE",
            "title": None,
            "brand": None,  # '' is missing, not a brand
            "categories": None,
            "price": "12",
            "description": None,
            "line_no": 3,
        },
    ]


def test_meta_rejects_code_without_running_it_and_keeps_json_lines(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    lines = [
        b"{'asin': 'A1', 'title': 'ok'}",
        f"__import__('os').system('touch {marker}')".encode(),
        f"{{'asin': __import__('os').system('touch {marker}')}}".encode(),
        b'{"asin": "A2", "title": null, "price": 1.5, "categories": ["Toys", "Games"], "x": true}',
        b"['not', 'a', 'dict']",
        b"{'title': 'no asin'}",
        b"{'asin': '   '}",
        b"{'asin': 42}",
        b"   ",
        "{'asin': 'A3', 'title': 'caf\xe9'}".encode("latin-1"),
        b"{'asin': 'A4', 'title': 'trunc",
    ]
    rows, rejected = read_meta(_gz(tmp_path / "meta.json.gz", lines))

    assert not marker.exists()
    assert rows[["item_id", "title", "price", "categories", "line_no"]].values.tolist() == [
        ["A1", "ok", None, None, 1],
        ["A2", None, "1.5", "Toys > Games", 4],
    ]
    assert rejected[["line_no", "reason"]].values.tolist() == [
        [2, "malformed_line"],
        [3, "malformed_line"],
        [5, "malformed_line"],
        [6, "missing_id"],
        [7, "missing_id"],
        [8, "missing_id"],
        [10, "non_utf8"],
        [11, "malformed_line"],
    ]
    assert rejected.loc[0, "raw"] == f"__import__('os').system('touch {marker}')"
    assert rejected.loc[6, "raw"] == "{'asin': 'A3', 'title': 'caf\\xe9'}"


def test_reviews_fixture_rows_and_dtypes(tmp_path: Path) -> None:
    rows, rejected = read_reviews(_fixture_gz(tmp_path, "reviews_Tiny_5.json"))

    assert rejected.empty
    assert rows.columns.tolist() == ["user_id", "item_id", "timestamp", "line_no"]
    assert rows.dtypes.astype(str).tolist() == ["object", "object", "int64", "int64"]
    assert rows.values.tolist() == [
        ["A1YJEY40YUW4SE", "7806397051", 1391040000, 1],
        ["A60XNB876KYML", "7806397051", 1397779200, 2],
        ["A1YJEY40YUW4SE", "B00004TMFE", 1378425600, 4],  # line 3 is empty
    ]


def test_reviews_every_reject_reason_in_line_order(tmp_path: Path) -> None:
    def review(user: str = '"U1"', item: str = '"I1"', ts: str = "100") -> bytes:
        return f'{{"reviewerID": {user}, "asin": {item}, "unixReviewTime": {ts}}}'.encode()

    long_line = b'{"reviewerID": "U9", "reviewText": "' + b"x" * 2000
    lines = [
        review(ts="1400000000"),
        b'{"reviewerID": "U2", "asin": "I2", "reviewText": "caf\xe9", "unixReviewTime": 1}',
        long_line,
        b'["U3", "I3", 5]',
        b'{"asin": "I4", "unixReviewTime": 5}',
        review(user='""'),
        review(item="null"),
        b'{"reviewerID": "U5", "asin": "I5"}',
        review(ts='"1400000000"'),
        review(ts="1.5"),
        review(ts="true"),
        review(ts="99999999999999999999"),
        b"",
        review(user='"U6"', item='"I6"', ts="-5"),
        b"\xff\xfe garbage",
    ]
    rows, rejected = read_reviews(_gz(tmp_path / "reviews.json.gz", lines))

    assert rows.values.tolist() == [["U1", "I1", 1400000000, 1], ["U6", "I6", -5, 14]]
    assert rejected.dtypes.astype(str).tolist() == ["int64", "object", "object"]
    assert rejected[["line_no", "reason"]].values.tolist() == [
        [2, "non_utf8"],
        [3, "malformed_line"],
        [4, "malformed_line"],
        [5, "missing_id"],
        [6, "missing_id"],
        [7, "missing_id"],
        [8, "bad_timestamp"],
        [9, "bad_timestamp"],
        [10, "bad_timestamp"],
        [11, "bad_timestamp"],
        [12, "bad_timestamp"],
        [15, "non_utf8"],
    ]
    raw = dict(zip(rejected["line_no"], rejected["raw"]))
    assert raw[2] == ('{"reviewerID": "U2", "asin": "I2", "reviewText": "caf\\xe9", "unixReviewTime": 1}')
    assert raw[3] == long_line.decode()[:1000] and len(raw[3]) == 1000
    assert raw[15] == "\\xff\\xfe garbage"


def test_plain_text_input_is_read_too(tmp_path: Path) -> None:
    rows, rejected = read_reviews(FIXTURES / "reviews_Tiny_5.json")
    assert rows["line_no"].tolist() == [1, 2, 4] and rejected.empty


def test_empty_file_gives_typed_empty_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.json.gz"
    path.write_bytes(gzip.compress(b""))
    rows, rejected = read_reviews(path)
    assert rows.empty and rejected.empty
    assert rows.dtypes.astype(str).tolist() == ["object", "object", "int64", "int64"]
    assert rejected.dtypes.astype(str).tolist() == ["int64", "object", "object"]


def test_unreadable_files_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.json\.gz does not exist; run `liger ingest --set source.format=mcauley`"):
        read_reviews(tmp_path / "nope.json.gz")
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(gzip.compress((FIXTURES / "reviews_Tiny_5.json").read_bytes())[:-30])
    with pytest.raises(DataError, match=r"cannot read .*cut\.json\.gz .*download it again"):
        read_meta(truncated)


def test_fetch_then_read_from_a_local_server(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    for name in ("reviews_Tiny_5.json", "meta_Tiny.json"):
        _fixture_gz(served, name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        reviews, meta = fetch_mcauley("Tiny", base, tmp_path / "raw", progress=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert (reviews.name, meta.name) == ("reviews_Tiny_5.json.gz", "meta_Tiny.json.gz")
    assert len(read_reviews(reviews)[0]) == 3
    assert read_meta(meta)[0]["item_id"].tolist() == ["0205616461", "7806397051", "B00004TMFE"]
