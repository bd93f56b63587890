"""imagejourney run configuration, in the spirit of Playwright's projects.

TARGETS: where the product runs and which UI profile operates it.
  - `start`: the bundled reference app, started (and stopped) by the e2e fixtures.
  - `url` / `url_env`: a product already running (staging); `ui_profile_env` lets CI choose
    the profile without editing this file.
BROWSER: launch flags and page defaults for Chromium.
"""

TARGETS = {
    "reference": {
        "start": "reference_app",  # started by the fixtures on a free local port
        "model": "portrait-world",  # trained here; or tiny (random weights), or a local diffusers directory
        "app_args": [],  # the app's own options, e.g. ["--fault-latency-ms", "200"] (also: pytest --app-args "…")
        "ui_profile": "reference",
        # "cost": {"gpu_hour_usd": 2.50},  # price per GPU-hour: reports show cost per usable image
    },
    "staging": {
        "url_env": "STAGING_URL",  # e.g. https://staging.example.com/
        "ui_profile_env": "STAGING_UI_PROFILE",  # path of the staging UI's profile YAML
        "ui_profile": "reference",  # used when STAGING_UI_PROFILE is not set
        # "cost": {"gpu_hour_usd": 2.50},
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
