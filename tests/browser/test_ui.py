"""foreman's status page in headless Chromium: log in with the form, watch jobs submitted
through the API appear, run (with their tokens per second) and finish without a reload,
cancel one from the page, check that at phone width the tables are stacked cards that do
not overflow sideways, and that a non-admin key sees only its own jobs. No console errors
are allowed.

Run by scripts/browser-tests.sh, which starts foreman, the simulator and chromedriver and
sets FOREMAN_URL, FOREMAN_ADMIN_TOKEN, WEBDRIVER_URL and SCREENSHOT_DIR.
"""

import json
import os
import sys
import tempfile
import urllib.request

from selenium import webdriver
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["FOREMAN_URL"]
ADMIN = os.environ["FOREMAN_ADMIN_TOKEN"]
SHOTS = os.environ["SCREENSHOT_DIR"]
DEADLINE = 30


def api(method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def new_key(name):
    return api("POST", "/admin/keys", ADMIN, {"name": name})["key"]


def submit(token, text):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": text}]}
    return api("POST", "/jobs", token, body)["job_id"]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1000", "--user-data-dir=" + tempfile.mkdtemp(prefix="foreman-ui-"),
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium's connection knows its `getLog` command, which reads the console.
    connection = ChromiumRemoteConnection(
        os.environ["WEBDRIVER_URL"], vendor_prefix="goog", browser_name="chrome"
    )
    return webdriver.Remote(command_executor=connection, options=options)


def until(driver, what, condition):
    """Waits for `condition(driver)` to be truthy and returns it. The page redraws its
    tables on every snapshot, so an element found a moment ago may be gone by the time it
    is read: that counts as "not yet", like one not there. Any other error is raised as it
    is, not reported as a timeout."""
    wait = WebDriverWait(
        driver,
        DEADLINE,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    try:
        return wait.until(condition)
    except TimeoutException:
        shot(driver, "failed")
        raise AssertionError("timed out waiting for " + what) from None


def row(driver, table, job):
    found = driver.find_elements(By.CSS_SELECTOR, f'#{table} tr[data-job="{job}"]')
    return found[0] if found else None


def row_text(driver, table, job):
    """The text of `job`'s row in `table`, or "" when it is not there; read inside
    `until`, since the row may be redrawn between finding and reading it."""
    found = row(driver, table, job)
    return found.text if found else ""


def cancel_from_page(driver, job):
    row(driver, "queued", job).find_element(By.CSS_SELECTOR, "button.cancel").click()
    return True


def shot(driver, name):
    path = os.path.join(SHOTS, name + ".png")
    driver.save_screenshot(path)
    print("screenshot:", path)


def login(driver, key):
    driver.get(URL + "/ui")
    field = until(driver, "the login form", lambda d: d.find_element(By.ID, "key"))
    field.send_keys(key)
    field.send_keys(Keys.ENTER)  # the form is usable from the keyboard
    until(driver, "the live stream", lambda d: d.find_element(By.ID, "live").text == "Live")
    # Marks this page: if it were reloaded, the mark would be gone.
    driver.execute_script("window.__foremanMark = 'same page'")


def same_page(driver):
    return driver.execute_script("return window.__foremanMark") == "same page"


def console_errors(driver):
    log = driver.execute("getLog", {"type": "browser"})["value"]
    return [e for e in log if e["level"] == "SEVERE"]


def test_admin_watches_jobs_move_and_cancels_one(driver, alice, bob):
    login(driver, ADMIN)
    until(driver, "the target as up", lambda d: "up" in d.find_element(By.ID, "targets").text)
    first = submit(alice, "first")
    second = submit(alice, "second")
    doomed = submit(bob, "to be cancelled")

    until(driver, "the first job running", lambda d: row(d, "running", first))
    until(driver, "the first job's tokens per second",
          lambda d: "tok/s" in row_text(d, "running", first))
    until(driver, "the others queued", lambda d: row(d, "queued", second) and row(d, "queued", doomed))
    queued_text = until(driver, "the doomed job's row", lambda d: row_text(d, "queued", doomed))
    assert "bob" in queued_text and "llama3.2" in queued_text, queued_text
    shot(driver, "admin-laptop")

    until(driver, "the cancel button clicked", lambda d: cancel_from_page(d, doomed))
    until(driver, "the cancelled job among recent ones",
          lambda d: "cancelled" in row_text(d, "recent", doomed))
    assert "cancelled" in driver.find_element(By.ID, "notice").text
    until(driver, "the first job done", lambda d: "done" in row_text(d, "recent", first))
    until(driver, "the second job running", lambda d: row(d, "running", second))
    until(driver, "alice's usage today", lambda d: "alice" in d.find_element(By.ID, "usage").text)
    assert same_page(driver), "the page was reloaded"
    shot(driver, "admin-overview")

    errors = console_errors(driver)
    assert not errors, errors
    driver.find_element(By.ID, "logout").click()
    until(driver, "the login form again", lambda d: d.find_elements(By.ID, "key"))
    return second


def overflow(driver):
    """What sticks out sideways: the page itself, or any table past its box or the window."""
    return driver.execute_script("""
        const out = [];
        const width = window.innerWidth;
        if (document.documentElement.scrollWidth > width) {
          out.push("page: " + document.documentElement.scrollWidth + " > " + width);
        }
        for (const t of document.querySelectorAll("table")) {
          const box = t.parentElement;
          if (box.scrollWidth > box.clientWidth) {
            out.push(t.id + " scrolls: " + box.scrollWidth + " > " + box.clientWidth);
          }
          const right = t.getBoundingClientRect().right;
          if (right > width) out.push(t.id + " ends at " + right + " > " + width);
        }
        return out;
    """)


def test_at_phone_width_the_tables_are_cards_that_fit(driver, alice, bob):
    # One runs while the other waits (fair share picks which), so both tables have rows.
    jobs = [submit(alice, "a phone watches this"), submit(bob, "and this waits")]
    login(driver, ADMIN)
    driver.set_window_size(390, 844)
    until(driver, "a narrow window", lambda d: d.execute_script("return window.innerWidth") <= 600)

    def one_running_one_queued(d):
        return any(row(d, "running", a) and row(d, "queued", b) for a, b in (jobs, jobs[::-1]))

    until(driver, "a job running and one queued", one_running_one_queued)
    until(driver, "alice's usage today", lambda d: "alice" in d.find_element(By.ID, "usage").text)
    assert not overflow(driver), overflow(driver)
    # Stacked: each cell is captioned with its column's name.
    def model_cell(d):
        cell = d.find_element(By.CSS_SELECTOR, "#queued tr[data-job] td:nth-child(4)")
        caption = d.execute_script("return getComputedStyle(arguments[0], '::before').content", cell)
        return cell.get_attribute("data-label"), caption

    label, caption = until(driver, "a queued job's model cell", model_cell)
    assert label == "Model", label
    assert "Model" in caption, caption
    shot(driver, "admin-phone")
    driver.set_window_size(1280, 1000)
    errors = console_errors(driver)
    assert not errors, errors
    driver.find_element(By.ID, "logout").click()
    until(driver, "the login form again", lambda d: d.find_elements(By.ID, "key"))


def test_a_non_admin_sees_only_its_own_jobs(driver, alice, bob):
    mine = submit(bob, "bob's own")
    login(driver, bob)
    until(driver, "bob's job on the page",
          lambda d: any(row(d, t, mine) for t in ("queued", "running", "recent")))
    assert "your jobs only" in driver.find_element(By.ID, "viewer").text

    def shown_jobs_and_keys(d):
        rows = d.find_elements(By.CSS_SELECTOR, "tr[data-job]")
        cells = d.find_elements(By.CSS_SELECTOR, "tr[data-job] td:nth-child(3)")
        return {e.get_attribute("data-job") for e in rows}, {c.text for c in cells}

    shown, keys = until(driver, "the rows read", shown_jobs_and_keys)
    body = driver.find_element(By.TAG_NAME, "main").text
    assert "alice" not in body, body
    assert mine in shown, shown
    shot(driver, "bob-laptop")
    errors = console_errors(driver)
    assert not errors, errors
    return keys


TESTS = (
    test_admin_watches_jobs_move_and_cancels_one,
    test_at_phone_width_the_tables_are_cards_that_fit,
    test_a_non_admin_sees_only_its_own_jobs,
)


def main():
    alice, bob = new_key("alice"), new_key("bob")
    driver = browser()
    passed = 0
    try:
        for test in TESTS:
            test(driver, alice, bob)
            print("ok:", test.__name__)
            passed += 1
    except AssertionError as err:
        print("FAILED:", err)
    finally:
        driver.quit()
    print(f"{passed} passed, {len(TESTS) - passed} failed")
    sys.exit(0 if passed == len(TESTS) else 1)


if __name__ == "__main__":
    main()
