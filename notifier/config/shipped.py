"""The shipped rules.yaml and templates/: the starting point of every deployment and the demo.

They live once, at the repository's root. A wheel carries them inside the package as
`notifier/shipped/` (setup.py's build step copies them there), so an installed notifier finds
them without a checkout beside it; running from a checkout finds them at the root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED_NAMES = ("rules.yaml", "templates")


def shipped(name: str) -> Path:
    """The shipped `rules.yaml` or `templates`: from the installed package, else the checkout.

    Raises FileNotFoundError (in words) when neither has it: an install that lost its data.
    """
    for root in (_PACKAGE / "shipped", _PACKAGE.parent):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(
        f"the shipped {name} is missing from this installation ({_PACKAGE}); reinstall notifier"
    )
