"""The IOC through a real `lscloud up`: events published on the cloud's bus by the test (the
citizen-reports contract, a border declaration, a dossier …) reach the IOC through the dispatcher's
durable consumers; the API, the SSE stream and a replay through the gateway; the wall in Chromium
(no console error, every tile a value or "no source connected", a new event changes a tile live,
the chart renders, the communes chart names its bars as the directory does), screenshots kept
(IOC_ARTIFACTS or the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from localcloud import ROOT, running, wait_for
from lscloud.auth import dev_keys, issue_token

sys.path.insert(0, str(ROOT / "tests" / "integration"))
import ioc_support as ev  # noqa: E402

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "ioc-cloud", only=["ioc", "directory"]) as c:   # the directory names communes
        yield c


@pytest.fixture(scope="module")
def bus(cloud):
    from lscloud.bus import SyncBus
    from lscloud.local.cloud import cloud_settings

    b = SyncBus(cloud_settings(cloud.state())).start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def api(cloud):
    private, _ = dev_keys(cloud.state_dir)
    headers = {"Authorization": "Bearer " + issue_token(private, "ioc-wall", "ioc")}
    with httpx.Client(base_url=cloud.gateway + "/ioc", timeout=30, headers=headers) as client:
        client.operator = {"Authorization": "Bearer " + issue_token(private, "op-1", "operator")}
        yield client


def indicator(api, ident: str) -> dict:
    return next(i for i in api.get("/v1/indicators").json()["items"] if i["id"] == ident)


def test_nothing_sent_yet_every_source_says_not_connected(api):
    body = api.get("/v1/indicators").json()
    assert {a["status"] for a in body["areas"]} == {"no-source"}  # only the IOC runs in this cloud
    assert all(i["value"] is None for i in body["items"])


def test_published_events_reach_the_figures_through_the_bus(api, bus):
    now = ev.ago(0)
    rid = ev.report_id(now)
    for e in [ev.border("d-e2e", "submitted", now - timedelta(minutes=30)),
              ev.border("d-e2e", "cleared", now - timedelta(minutes=5)),
              ev.dossier("h-e2e", "received", now - timedelta(minutes=20), deadline=now + timedelta(days=3)),
              ev.report(rid, "submitted", "submitted", "open", now - timedelta(minutes=10)),
              ev.report(rid, "acknowledged", "acknowledged", "open", now - timedelta(minutes=8))]:
        bus.publish(e)
    wait_for(lambda: indicator(api, "reports.open")["value"] == 1 and indicator(api, "border.cleared")["value"] == 1
             and indicator(api, "dossiers.received")["value"] == 1, 60, "the IOC to count the published events")
    assert indicator(api, "border.clearance-median")["value"] == 25.0
    areas = {a["id"]: a["status"] for a in api.get("/v1/indicators").json()["areas"]}
    assert areas["petitions"] == areas["public-services"] == areas["socio-economic"] == "ok"
    assert areas["tourism"] == areas["environment"] == "no-source"
    card = api.get("/v1/communes/06001").json()
    assert next(i for i in card["items"] if i["id"] == "reports.open")["value"] == 1


def test_the_stream_goes_through_the_gateway_and_closes(api, bus):
    with httpx.stream("GET", str(api.base_url).rstrip("/") + "/v1/stream?max_seconds=15", timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        while not next(lines).startswith("data:"):
            pass  # the hello
        bus.publish(ev.transfer(f"t-{uuid.uuid4().hex[:8]}", 250_000))
        seen = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:") and "softatm" in line:
                break
        assert "event: changed" in seen
    short = httpx.get(str(api.base_url).rstrip("/") + "/v1/stream?max_seconds=1", timeout=30)
    assert short.status_code == 200 and "event: bye" in short.text


def test_replay_from_the_stream_gives_identical_figures(api):
    r = api.post("/v1/replay", headers=api.operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["identical"] is True and body["differences"] == [] and body["events"] >= 6


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    out = Path(os.environ.get("IOC_ARTIFACTS") or tmp_path_factory.mktemp("ioc-screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def quiet_stream(page) -> None:
    """The page's stream answered in the browser (hello, no reconnect for ten minutes), for a page
    that looks at the figures, not at the stream: one address holds at most two of the IOC's
    streams, and a closed page's stays held until its max_seconds."""
    page.route("**/ioc/v1/stream*", lambda route: route.fulfill(
        status=200, content_type="text/event-stream",
        body='retry: 600000\nevent: hello\ndata: {"seq": 0}\n\nevent: bye\ndata: {}\n\n'))


def test_the_wall_live_in_chromium(cloud, api, bus, browser, artifacts):
    bus.publish(ev.border(f"d-{uuid.uuid4().hex[:8]}", "submitted", ev.ago(3)))  # runs on its own too
    bus.publish(ev.report(ev.report_id(ev.ago(3)), "submitted", "submitted", "open", ev.ago(3)))
    wait_for(lambda: indicator(api, "border.declared")["value"] and indicator(api, "reports.received")["value"], 60,
             "the IOC to count a declaration and a report")
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(cloud.gateway + "/ioc/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.locator("html").get_attribute("lang") == "vi"
    tiles = page.locator("article.tile")
    assert tiles.count() == 10
    for i in range(tiles.count()):
        tile = tiles.nth(i)
        text = tile.inner_text()
        values = [v for v in tile.locator(".value").all_inner_texts() if v.strip()]
        assert values or "Chưa kết nối nguồn dữ liệu" in text, text
    assert "Chưa kết nối nguồn dữ liệu" in page.locator("article[data-area='tourism']").inner_text()
    page.wait_for_selector("#chart .main-svg", timeout=30_000)  # plotly drew the series
    assert page.locator("#chart .scatterlayer .trace").count() >= 1
    cell = page.locator("[data-indicator='reports.received']")
    before = cell.inner_text()
    page.wait_for_selector("#live.on", timeout=15_000)
    bus.publish(ev.report(ev.report_id(ev.ago(1)), "submitted", "submitted", "open", ev.ago(1)))
    page.wait_for_function("(b) => document.querySelector(\"[data-indicator='reports.received']\").textContent !== b",
                           arg=before, timeout=30_000)
    assert int(cell.inner_text()) == int(before) + 1  # changed without a reload
    # the communes chart names its bars as the directory does (the events carry 06001's code)
    page.wait_for_function("[...document.querySelectorAll('#communes .ytick text')]"
                           ".some((t) => t.textContent === 'Xã Đoàn Kết')", timeout=30_000)
    page.screenshot(path=str(artifacts / "ioc-wall-desktop.png"), full_page=True)
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.locator("article[data-area='tourism']", has_text="No source connected").wait_for(timeout=30_000)
    page.locator("article[data-area='petitions']", has_text="Reports open").wait_for(timeout=30_000)
    assert problems == [], problems
    page.close()

    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    quiet_stream(phone)
    phone.on("console", lambda m: m.type == "error" and problems.append(m.text))
    phone.goto(cloud.gateway + "/ioc")  # without the slash: the page's base still finds its assets
    phone.wait_for_selector("body[data-ready='1']", timeout=30_000)
    phone.wait_for_selector("#chart .main-svg", timeout=30_000)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.screenshot(path=str(artifacts / "ioc-wall-phone.png"), full_page=True)
    assert problems == [], problems
    phone.close()


@pytest.fixture(scope="module")
def province(api, bus):
    """Twenty communes' dossiers, three communes' households reached (the longest indicator name:
    the pickers' widest option), alerts at three stations."""
    from functions.directory.function import units

    codes = sorted(units.by_code())[:20]
    for i, code in enumerate(codes):
        for _ in range(1 + i % 4):
            at = ev.ago(5 + i)
            bus.publish(ev.dossier(f"h-{uuid.uuid4().hex[:8]}", "received", at, deadline=at + timedelta(days=2), unit=code))
    for code in codes[:3]:
        bus.publish(ev.progress(code, 1000, 400, ev.ago(20)))
    hour = ev.ago(30).replace(minute=0, second=0, microsecond=0)
    for station in ("st-dongkinh", "st-huulung", "st-chima"):
        bus.publish(ev.aqi_alert(station, True, hour, 160.0))
    wait_for(lambda: len(indicator(api, "dossiers.received")["by"]["commune"]) >= 20
             and indicator(api, "environment.alerts-active")["value"] >= 3
             and indicator(api, "community.shop-or-payment-share")["value"] is not None, 60,
             "the IOC to count the province's dossiers, alerts and households")
    return codes


def open_wall(browser, cloud, problems: list, **page_options):
    page = browser.new_page(**page_options)
    quiet_stream(page)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(cloud.gateway + "/ioc/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    page.select_option("#commune-pick", "dossiers.received")
    page.wait_for_function("document.querySelectorAll('#communes .point').length >= 10", timeout=30_000)
    return page


def test_the_wall_fits_the_video_wall(cloud, api, province, browser, artifacts):
    communes = len(indicator(api, "dossiers.received")["by"]["commune"])
    problems = []
    page = open_wall(browser, cloud, problems, viewport={"width": 1920, "height": 1080})
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= 1080, f"the video wall would have to scroll ({height}px)"
    alerts = page.locator(".alerts-panel")
    box = alerts.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 1080
    assert alerts.evaluate("e => e.scrollHeight <= e.clientHeight")   # nothing cut off inside the panel
    assert page.locator("#alerts li").count() >= 3
    # the highest communes, full names, and how many of how many
    bars = page.locator("#communes .point").count()
    assert 10 <= bars <= 15 and page.inner_text("#communes-note").endswith(f"{bars}/{communes}")
    page.screenshot(path=str(artifacts / "ioc-wall-1920x1080.png"))
    page.close()
    assert problems == [], problems


def test_the_wall_does_not_scroll_sideways_on_a_phone(cloud, province, browser, artifacts):
    problems = []
    phone = open_wall(browser, cloud, problems, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                      is_mobile=True)
    assert phone.locator("#series-pick option", has_text="thanh toán điện tử").count() == 1   # the widest option
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    assert phone.locator("#communes .point").count() == 15
    phone.screenshot(path=str(artifacts / "ioc-wall-390-communes.png"), full_page=True)
    phone.close()
    assert problems == [], problems


def test_figures_that_cannot_be_read_are_said_to_be_old(cloud, province, browser, artifacts):
    problems = []
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    quiet_stream(page)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.route("**/ioc/v1/indicators", lambda route: route.fulfill(
        status=500, content_type="application/problem+json",
        body='{"type": "about:blank", "title": "Internal Server Error", "status": 500}'))
    page.goto(cloud.gateway + "/ioc/")
    banner = page.locator("#stale")
    banner.wait_for(state="visible", timeout=30_000)
    assert "Không tải được số liệu" in banner.inner_text() and "Data unavailable" in banner.inner_text()
    assert page.locator("#live.stale").count() == 1 and "Trực tiếp" not in page.inner_text("#live")
    page.screenshot(path=str(artifacts / "ioc-wall-500.png"))
    page.unroute("**/ioc/v1/indicators")
    page.click("#lang")   # reads the figures again
    banner.wait_for(state="hidden", timeout=30_000)
    assert page.locator("#live.on").count() == 1
    page.evaluate("localStorage.removeItem('ioc-lang')")
    page.close()
    assert problems == [], problems


def test_the_stream_is_opened_again_after_a_refusal(cloud, browser):
    """The browser gives an EventSource up after an answer other than 200 (the gateway's 503 while
    the function restarts): the wall opens another, here on the real stream."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    asked = []

    def stream(route):
        asked.append(route.request.url)
        if len(asked) == 1:
            return route.fulfill(status=503, content_type="application/problem+json", headers={"Retry-After": "1"},
                                 body='{"type": "about:blank", "title": "Service Unavailable", "status": 503}')
        return route.fallback()

    page.route("**/ioc/v1/stream*", stream)
    page.goto(cloud.gateway + "/ioc/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    page.wait_for_selector("#live.on", timeout=60_000)
    assert len(asked) >= 2
    page.close()
