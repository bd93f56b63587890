"""imagejourney: browser end-to-end workflow tester for image-generation products.

The subpackages `imagejourney.journeys`, `imagejourney.reports` and `imagejourney.reference_app`
live in the folders journeys/, reports/ and reference_app/ at the repository root; an installed
wheel holds them under imagejourney/ (pyproject.toml maps them with `package-dir`). In a
checkout, the folder holding this file can shadow the installed package (`python -m` from the
repository root puts the root first on sys.path), so the root is searched for them too.
"""

from pathlib import Path as _Path

_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "journeys" / "__init__.py").is_file() and not (_Path(__file__).parent / "journeys").exists():
    __path__.append(str(_checkout))  # noqa: F821 (a package's own __path__)
