"""The assistant through a real `lscloud up` (with the procedures and directory functions it asks):
questions through the gateway answered from the seeded catalogue, a conversation, the widget page
in headless Chromium (screenshot saved in the test's tmp dir), and nothing left running."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from localcloud import process_tree, running

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "assistant-cloud", only=["assistant", "procedures", "directory"]) as c:
        c.tree = [p.pid for p in process_tree(c.proc.pid)]
        yield c


@pytest.fixture(scope="module")
def api(cloud):
    with httpx.Client(base_url=cloud.gateway + "/assistant", timeout=60) as client:
        yield client


def test_questions_are_answered_from_the_seeded_catalogue(cloud, api):
    s = uuid.uuid4().hex
    a = api.post("/v1/messages", json={"session": s, "text": "lam so do mat bao lau"}).json()
    assert a["procedure"] == "DD-GCN" and a["intent"] == "time" and a["citations"][0]["national_code"] == "1.013978"
    b = api.post("/v1/messages", json={"session": s, "text": "can giay to gi"}).json()
    assert b["procedure"] == "DD-GCN" and b["intent"] == "documents"
    where = api.post("/v1/messages", json={"session": uuid.uuid4().hex, "text": "lý lịch tư pháp nộp ở đâu"}).json()
    assert where["procedure"] == "LLTP-CD" and "Cơ quan giải quyết" in where["text"]
    # a form's link is one the citizen can open: the procedures function's public URL, through the gateway
    forms = api.post("/v1/messages", json={"session": uuid.uuid4().hex, "text": "mẫu tờ khai đăng ký khai sinh"}).json()
    assert forms["procedure"] == "HT-KS" and forms["intent"] == "forms", forms
    link = next(w for w in forms["text"].split() if w.startswith("http"))
    assert link.startswith(f"{cloud.gateway}/procedures/v1/procedures/HT-KS/documents/")
    pdf = httpx.get(link, follow_redirects=True, timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_the_chat_widget_answers_with_its_source(cloud, browser, tmp_path):
    page = browser.new_page()
    page.goto(cloud.gateway + "/assistant/")
    page.fill("#q", "làm giấy khai sinh cho con cần gì")
    page.click("button[type=submit]")
    page.wait_for_selector(".msg.bot .cite")
    answer = page.locator(".msg.bot").last
    assert "Giấy chứng sinh" in answer.inner_text() and "HT-KS" in answer.locator(".cite").inner_text()
    page.locator(".chip", has_text="Lệ phí").first.click()
    page.wait_for_function("document.querySelectorAll('.msg.bot .cite').length >= 2")
    assert "Lệ phí" in page.locator(".msg.bot").last.inner_text()
    out = Path(os.environ.get("LSCLOUD_TEST_ARTIFACTS") or tmp_path)   # a folder kept after the run, if given
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "assistant-widget.png"), full_page=True)
    print("screenshot:", out / "assistant-widget.png")
    page.close()


def test_sigterm_leaves_no_process(cloud):
    cloud.terminate()
    assert cloud.proc.returncode == 0
    alive = [pid for pid in cloud.tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
