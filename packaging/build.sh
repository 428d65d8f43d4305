#!/usr/bin/env bash
# Build the one-folder bundle (Linux, macOS): DIST/reasonany-gui/{reasonany-gui,reasonany,_internal/,share/}.
#
#   packaging/build.sh [--dist DIR] [--work DIR] [--no-test] [--tar]
#
# Uses the Python environment it runs in (torch/CUDA build included: what is installed is what ships).
# Defaults: DIST=dist, WORK=build/pyinstaller under the repository root (both git-ignored).
# After the build it runs the bundle's self-test (offscreen) and prints the bundle's size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
TEST=1
TAR=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dist) DIST="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --no-test) TEST=0; shift ;;
    --tar) TAR=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "build.sh: PyInstaller is not installed in $("$PY" -c 'import sys; print(sys.prefix)')." >&2
  echo "          Install it with: $PY -m pip install -e '.[package]'   (or: $PY -m pip install pyinstaller)" >&2
  exit 2
fi
"$PY" -c "import reasonany_gui, torch, transformers, PySide6, pyqtgraph" || {
  echo "build.sh: the app's dependencies are missing; run: $PY -m pip install -e ." >&2; exit 2; }

cd "$ROOT"
echo "== PyInstaller: $ROOT/packaging/reasonany-gui.spec -> $DIST/reasonany-gui"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/reasonany-gui.spec

BUNDLE="$DIST/reasonany-gui"
if [ "$(uname)" != "Darwin" ]; then
  # Desktop integration files at FHS-like places inside the folder; a distro package or the user copies
  # them to /usr/share or ~/.local/share (docs/PACKAGING.md).
  APPID=io.github.reasonany.ReasonAnyGUI
  install -Dm644 packaging/linux/$APPID.desktop "$BUNDLE/share/applications/$APPID.desktop"
  install -Dm644 packaging/linux/$APPID.metainfo.xml "$BUNDLE/share/metainfo/$APPID.metainfo.xml"
  install -Dm644 reasonany_gui/resources/icon.svg "$BUNDLE/share/icons/hicolor/scalable/apps/$APPID.svg"
  install -Dm644 reasonany_gui/resources/icon.png "$BUNDLE/share/icons/hicolor/256x256/apps/$APPID.png"
fi

if [ "$TEST" = 1 ]; then
  echo "== self-test (offscreen)"
  HOME_DIR="$(mktemp -d)"
  REASONANY_HOME="$HOME_DIR" QT_QPA_PLATFORM=offscreen "$BUNDLE/reasonany-gui" --self-test
  REASONANY_HOME="$HOME_DIR" "$BUNDLE/reasonany" --help >/dev/null
  rm -rf "$HOME_DIR"
fi

echo "== bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
if [ "$TAR" = 1 ]; then
  VERSION="$("$PY" -c 'import reasonany_gui; print(reasonany_gui.__version__)')"
  ARCHIVE="$DIST/reasonany-gui-$VERSION-$(uname -s | tr 'A-Z' 'a-z')-$(uname -m).tar.gz"
  tar -C "$DIST" -czf "$ARCHIVE" reasonany-gui
  echo "== archive: $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
fi
