"""Entry script of the bundled command line (`reasonany` next to `reasonany-gui` in the bundle folder).

A script of its own (not `reasonany_gui/cli.py`) because PyInstaller runs its entry script as
`__main__`; importing the package keeps `cli.py`'s relative imports and resource paths working.
"""

from __future__ import annotations

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from reasonany_gui.cli import main

    raise SystemExit(main(sys.argv[1:]))
