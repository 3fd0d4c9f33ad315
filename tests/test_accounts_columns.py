"""The accounts list's columns in the URL (``cols``): chosen, kept by the sort, scope, paging
and filter links and by saved views, and an unknown name is an error in the page, not a 500."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote

from .test_web import CSM, Site, login, project, site

__all__ = ["project", "site"]  # the shared fixtures of tests/test_web.py

UNKNOWN = ("cols: unknown column 'mood'. Columns: name, account_id, segment, csm, lifecycle_stage, arr, "
           "renewal_date, score, band, coverage, change_30d, change_90d, red_modules, open_ctas.")


def _headers(html: str) -> list[str]:
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    cells = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]
    return [re.sub(r"[ ▲▼]+$", "", c.strip()) for c in cells]


def test_the_api_takes_columns_comma_separated_or_repeated(site: Site) -> None:
    r = site.client.get("/api/accounts", params={"cols": "band,score"}, headers=site.as_(CSM))
    assert r.json()["columns"] == ["score", "band"]  # in the list's order
    r = site.client.get("/api/accounts?cols=arr&cols=band,name", headers=site.as_(CSM))
    assert r.json()["columns"] == ["arr", "band"]
    default = site.client.get("/api/accounts", headers=site.as_(CSM)).json()["columns"]
    assert default == ["segment", "csm", "lifecycle_stage", "arr", "renewal_date", "score", "band",
                       "coverage", "change_30d", "open_ctas"]
    r = site.client.get("/api/accounts?cols=score,mood", headers=site.as_(CSM))
    assert r.status_code == 422 and r.json()["message"] == UNKNOWN


def test_columns_round_trip_through_links_and_saved_views(site: Site) -> None:
    login(site, CSM)
    page = site.client.get("/accounts?cols=score&cols=arr&sort=arr&desc=true&segment=Enterprise")
    assert page.status_code == 200
    assert _headers(page.text) == ["Account", "ARR", "Score"]
    links = [unquote(h).replace("&amp;", "&") for h in re.findall(r'href="(/accounts\?[^"]+)"', page.text)]
    sort_links = [h for h in links if "sort=" in h and "scope=" not in h.split("?", 1)[1].split("&")[0]]
    assert sort_links and all(parse_qs(h.split("?", 1)[1])["cols"] == ["arr,score"] for h in links
                              if "/accounts/" not in h and "views" not in h), links
    assert all(parse_qs(h.split("?", 1)[1]).get("segment") == ["Enterprise"] for h in sort_links)
    assert re.search(r'name="cols" value="arr" checked', page.text)
    assert not re.search(r'name="cols" value="band" checked', page.text)
    query = re.search(r'name="query" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    site.client.post("/views/accounts", data={"name": "ARR first", "query": query, "csrf_token": csrf})
    (view,) = site.wf.saved_views(CSM, "accounts")
    assert parse_qs(view["query"])["cols"] == ["arr,score"] and parse_qs(view["query"])["sort"] == ["arr"]
    again = site.client.get(f"/accounts?{view['query']}")
    assert _headers(again.text) == ["Account", "ARR", "Score"]
    # the picker sends every ticked column; the address bar gets one cols, or none for the usual ones
    picked = site.client.get("/accounts?band=red&cols=score&cols=arr", headers={"HX-Request": "true"})
    assert picked.headers["HX-Push-Url"] == "/accounts?band=red&cols=arr%2Cscore"
    usual = "&".join(f"cols={c}" for c in ("segment", "csm", "lifecycle_stage", "arr", "renewal_date",
                                           "score", "band", "coverage", "change_30d", "open_ctas"))
    same = site.client.get(f"/accounts?band=red&{usual}", headers={"HX-Request": "true"})
    assert same.headers["HX-Push-Url"] == "/accounts?band=red"


def test_an_unknown_column_is_an_error_in_the_page(site: Site) -> None:
    login(site, CSM)
    page = site.client.get("/accounts?cols=score,mood&band=red")
    assert page.status_code == 200
    assert f'<p class="flash error" role="alert">{UNKNOWN}</p>'.replace("'", "&#39;") in page.text
    assert _headers(page.text)[:3] == ["Account", "Segment", "CSM"]  # the usual columns
    assert "cols=" not in page.text.split('id="account-table"', 1)[1].split("</nav>", 1)[0]
