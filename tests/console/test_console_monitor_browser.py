"""The monitoring pages in real Chromium (the browser fixtures of test_console_browser.py): a
lead opens the queue, follows an account and suspends it with the page's form; the decision is
the lead's. SAFESTACK_CONSOLE_SCREENSHOTS=DIR saves the screenshots docs/monitor.md shows."""

from __future__ import annotations

from console_harness import Keys
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from test_console_browser import browser, console, shot, sign_in, wait  # noqa: F401
from test_console_monitor import prober_and_calm

from safestack.console.session import Principal
from safestack.records import EnforcementAction
from safestack.store import Store


def test_a_lead_suspends_an_account_from_the_queue(
    browser: WebDriver,  # noqa: F811
    console: tuple[str, Store, Keys],  # noqa: F811
) -> None:
    base, store, keys = console
    prober, calm = prober_and_calm(store)
    driver = browser
    sign_in(driver, base, keys.lead)
    driver.find_element(By.LINK_TEXT, "Monitoring").click()
    table = wait(driver).until(ec.presence_of_element_located((By.ID, "accounts")))
    assert prober in table.text and calm not in table.text
    assert "repeated-high-severity → throttle (shadow)" in table.text
    shot(driver, "monitor-queue")

    driver.find_element(By.LINK_TEXT, prober).click()
    form = wait(driver).until(ec.presence_of_element_located((By.ID, "decide")))
    Select(form.find_element(By.NAME, "action")).select_by_value("suspend")
    form.find_element(By.NAME, "reason").send_keys("six weapons requests <b>in an hour</b>")
    form.find_element(By.NAME, "lasting").send_keys("7d")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "in-force"), "suspend"))
    assert "<b>in an hour</b>" in driver.find_element(By.ID, "decisions").text  # as text
    shot(driver, "monitor-account")

    (decision,) = store.enforcement.decisions(account=prober, limit=None)
    lead = store.keys.get(keys.lead_id)
    assert lead is not None
    assert decision.action is EnforcementAction.SUSPEND
    assert decision.actor == f"{Principal(lead).name} ({keys.lead_id})"
