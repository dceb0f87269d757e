"""Headless Chromium for the dashboard's browser test: Debian's chromium and chromedriver driven
by selenium, with the flags this machine's closed network needs, a fresh profile, the console
log collected, downloads allowed into a folder, and full-page PNG screenshots.
"""
from __future__ import annotations

import base64
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

INSTALL_HINT = "install it with: scripts/tools.sh browser (Debian's chromium and chromium-driver, selenium in a venv)"

# Without the background-networking flags Chromium keeps opening connections this machine's
# network refuses (Google's hosts, component updates, QUIC probes).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--lang=en-US",
]


class BrowserSetupError(Exception):
    """Chromium or chromedriver is missing or does not start."""


@dataclass
class LogEntry:
    level: str
    source: str
    message: str

    def as_dict(self) -> dict:
        return {"level": self.level, "source": self.source, "message": self.message}


@dataclass
class Browser:
    """One Chromium session; use as a context manager so the browser and its profile go away."""

    chromium: str
    chromedriver: str
    width: int
    height: int
    driver: webdriver.Chrome | None = None
    profile: Path | None = None
    downloads: Path | None = None
    log: list[LogEntry] = field(default_factory=list)

    def __enter__(self) -> "Browser":
        for name, path in (("chromium", self.chromium), ("chromedriver", self.chromedriver)):
            if not shutil.which(path):
                raise BrowserSetupError(f"{name} not found at {path}; {INSTALL_HINT}")
        self.profile = Path(tempfile.mkdtemp(prefix="stockstream-chromium-"))
        self.downloads = self.profile / "downloads"
        self.downloads.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which(self.chromium)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile / 'profile'}")
        options.add_argument(f"--window-size={self.width},{self.height}")
        options.add_experimental_option("prefs", {
            "download.default_directory": str(self.downloads),
            "download.prompt_for_download": False,
        })
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which(self.chromedriver)))
        except WebDriverException as error:
            self.cleanup()
            raise BrowserSetupError(f"chromium did not start: {error.msg or error}; {INSTALL_HINT}") from error
        # The exact viewport (a phone's 375 px too), and downloads into our folder.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": self.width <= 480,
        })
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(self.downloads)})
        return self

    def __exit__(self, *_exc) -> None:
        if self.driver is not None:
            try:
                self.driver.quit()
            except WebDriverException:
                pass
        self.cleanup()

    def cleanup(self) -> None:
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)

    def version(self) -> str:
        capabilities = self.driver.capabilities
        return f"{capabilities.get('browserName')} {capabilities.get('browserVersion')}"

    def drain_log(self) -> list[LogEntry]:
        """The console and network messages logged since the last call (also kept in `log`)."""
        entries = [LogEntry(e.get("level", ""), e.get("source", ""), e.get("message", "")) for e in self.driver.get_log("browser")]
        self.log.extend(entries)
        return entries

    def screenshot(self, path: Path) -> dict:
        """Saves a PNG of the whole page (not only the viewport); answers its size."""
        # From the top, so that sticky elements sit where they belong in the full-page picture.
        self.driver.execute_script("window.scrollTo(0, 0)")
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = self.width, max(self.height, int(size["height"]))
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        })
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return {"path": str(path), "width": width, "height": height}

    def wait_for_download(self, suffix: str, timeout: float) -> Path | None:
        """The first finished download ending in `suffix`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            if done:
                return done[0]
            time.sleep(0.05)
        return None
