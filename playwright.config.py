"""imagejourney run configuration, in the spirit of Playwright's projects.

TARGETS: where the product runs and which UI profile operates it. `reference` is the bundled
reference app, started (and stopped) by the e2e fixtures with the journey pack's settings.
BROWSER: launch flags and page defaults for Chromium.
"""

TARGETS = {
    "reference": {
        "start": "reference_app",  # started by the fixtures on a free local port
        "ui_profile": "reference",
        "model": "tiny",  # or a local diffusers directory
    },
}
DEFAULT_TARGET = "reference"

BROWSER = {
    # Flags that keep Chromium quiet on a closed network and inside containers.
    "args": [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ],
    "viewport": {"width": 1280, "height": 900},
}

RESULTS_DIR = "journey-results"
