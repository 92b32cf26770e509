"""fnn playground end to end in headless Chromium (Debian's chromium + chromium-driver, driven
by Selenium; nothing is downloaded): load the page with a configuration in the URL hash, play,
wait until the epoch counter passes 200 and the test loss has fallen, check the decision map
was drawn, then the page's controls and a bad link."""
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_playground import _free_port, start_server  # noqa: E402  (the server helpers)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.xdist_group("playground"),
    pytest.mark.skipif(not (CHROMIUM and os.path.exists(DRIVER)),
                       reason="no Chromium: install it with `apt-get install -y chromium "
                              "chromium-driver` (as root; .ci/run does this in CI)"),
]
SCREENSHOT = os.environ.get("FNN_PLAYGROUND_SCREENSHOT")   # where to save one (docs)


@pytest.fixture(scope="module")
def page():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    port = _free_port()
    server = start_server(port)
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver, f"http://127.0.0.1:{port}/"
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)


def wait_for(driver, script, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}; state "
                         f"{driver.execute_script('return window.fnnPlayground.state()')}")


STATE = "return window.fnnPlayground && window.fnnPlayground.state()"
BLANK = """const c = document.getElementById(arguments[0]);
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let coloured = 0, colours = new Set();
for (let i = 0; i < d.length; i += 4) {
  if (d[i + 3] > 0 && !(d[i] > 250 && d[i + 1] > 250 && d[i + 2] > 250)) coloured++;
  colours.add((d[i] >> 4) * 256 + (d[i + 1] >> 4) * 16 + (d[i + 2] >> 4));
}
return [coloured / (d.length / 4), colours.size];"""


def test_page_trains_from_a_hash_config_and_draws_the_decision_map(page):
    driver, url = page
    driver.get(url + "#dataset=xor&networkShape=4,4&activation=tanh&learningRate=0.03"
                     "&batchSize=10&xTimesY=true&showTestData=true")
    state = wait_for(driver, STATE + " && window.fnnPlayground.state().ready && "
                                     "window.fnnPlayground.state()")
    assert state["config"]["dataset"] == "xor" and state["config"]["networkShape"] == [4, 4]
    assert state["config"]["xTimesY"] is True and state["epoch"] == 0
    first_test_loss = state["testLoss"]
    driver.execute_script("window.fnnPlayground.play()")
    state = wait_for(driver, "const s = window.fnnPlayground.state(); "
                             "return s.epoch > 200 && s");
    driver.execute_script("window.fnnPlayground.pause()")
    assert state["testLoss"] < first_test_loss and state["error"] in ("", None)
    coloured, colours = driver.execute_script(BLANK, "heatmap")
    assert coloured > 0.9 and colours > 10            # a drawn map, not a blank canvas
    # every part of TensorFlow Playground's view is there
    n_neurons = driver.execute_script("return document.querySelectorAll('.neuron').length")
    assert n_neurons == 7 + 4 + 4 + 1                  # all 7 features; 4, 4; the output
    off = driver.execute_script("return [...document.querySelectorAll('.neuron.off')]"
                                ".map(d => d.nextSibling.textContent)")
    assert off == ["x1²", "x2²", "sin x1", "sin x2"]   # x1, x2, x1·x2 are on
    titles = driver.execute_script(
        "return [...document.querySelectorAll('#links line title')].map(t => t.textContent)")
    assert len(titles) == 3 * 4 + 4 * 4 + 4 and titles[0].startswith("weight ")
    assert "xTimesY=true" in driver.current_url and "networkShape=4%2C4" in driver.current_url
    if SCREENSHOT:
        driver.save_screenshot(SCREENSHOT)
    driver.find_element("id", "discretize").click()        # two colours instead of a ramp
    wait_for(driver, "return window.fnnPlayground.state().config.discretize === true")
    assert driver.execute_script(BLANK, "heatmap")[1] < colours
    epoch = state["epoch"]
    driver.execute_script("window.fnnPlayground.step()")
    wait_for(driver, f"return window.fnnPlayground.state().epoch === {epoch} + 1 || "
                     f"window.fnnPlayground.state().epoch > {epoch} + 1")


def test_page_controls_change_the_run_and_a_bad_link_shows_an_error(page):
    driver, url = page
    driver.get("about:blank")
    driver.get(url + "#networkShape=4,4,4,4,4,4,4")        # 7 layers: refused
    wait_for(driver, STATE + " && window.fnnPlayground.state().ready")
    state = driver.execute_script(STATE)
    assert state["config"]["networkShape"] == [4, 2]          # fell back to the defaults
    assert "at most 6 layers" in driver.find_element("id", "error").text
    assert "at most 6 layers" in state["error"]
    driver.find_element("id", "f-5").click()                # switch sin x1 on
    wait_for(driver, "return window.fnnPlayground.state().config.sinX === true")
    driver.find_element("id", "addLayer").click()
    wait_for(driver, "return window.fnnPlayground.state().config.networkShape.length === 3")
    driver.execute_script("document.getElementById('activation').value = 'relu';"
                          "document.getElementById('activation').dispatchEvent(new Event('change'))")
    wait_for(driver, "return window.fnnPlayground.state().config.activation === 'relu'")
    driver.find_element("id", "cmpRun").click()              # learning rates, fnn.sweep
    result = wait_for(driver, "return window.fnnPlayground.state().compare", timeout=120)
    assert [v["value"] for v in result] == [0.003, 0.03, 0.3, 1]
    assert driver.execute_script(BLANK, "cmpCurves")[0] > 0
