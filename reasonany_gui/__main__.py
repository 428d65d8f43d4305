"""`python -m reasonany_gui` starts the desktop app."""

from reasonany_gui.app import main

raise SystemExit(main())
