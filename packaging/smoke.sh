#!/usr/bin/env bash
# Smoke test of a built Linux package, as a curator's machine would run it: the .deb unpacked into a
# scratch root (or the portable tarball unpacked), a clean HOME, and the installed binary only.
#
#   packaging/smoke.sh dist/marginalia_<version>_amd64.deb   (or a .tar.gz, or an unpacked app folder)
#
# Checks: --version names the version and commit; `about` loads every model library (torch,
# onnxruntime, faiss, open_clip, transformers, segment_anything, ...); new/import/list/export on the
# shared scans; the GUI renders a screenshot offscreen, and under Xvfb when it is installed; a tiny SAM
# and a tiny CLIP (random weights in the publishers' formats, made with the test kit) load and run through
# the installed app's model runtime, and CLIP indexes and searches the project; nothing is written
# outside the user's data, config, cache and log folders and the curator's own project and exports.
# Needs the development venv (PYTHON) only to make the tiny models and to read the results.
set -euo pipefail

PACKAGE="$(realpath "$1")"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
SHARED="${MARGINALIA_SHARED:-$REPO/../shared}/data"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/marginalia-smoke.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }

ROOT="$SCRATCH/root"
mkdir -p "$ROOT"
case "$PACKAGE" in
    *.deb) dpkg-deb -x "$PACKAGE" "$ROOT"; APP="$ROOT/opt/marginalia" ;;
    *.tar.gz) tar -C "$ROOT" -xzf "$PACKAGE"; APP="$ROOT/Marginalia" ;;
    *) APP="$PACKAGE" ;;
esac
BIN="$APP/marginalia"
test -x "$BIN" || fail "no marginalia program in the package"

# A clean user: nothing inherited from the developer's environment.
export HOME="$SCRATCH/home"
mkdir -p "$HOME"
unset XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME XDG_STATE_HOME MARGINALIA_DATA_DIR MARGINALIA_MODELS \
      MARGINALIA_DEVICE PYTHONPATH PYTHONHOME VIRTUAL_ENV
export PATH="/usr/bin:/bin"
WORK="$SCRATCH/work"
mkdir -p "$WORK"
touch "$SCRATCH/started"
sleep 1  # file times have a second's resolution on some file systems

step "--version"
version="$("$BIN" --version)"
expected="$("$PY" -c 'import engine; print(engine.__version__)')"
[[ "$version" == "Marginalia $expected (commit "* ]] || fail "--version said: $version"
echo "   $version"

step "about (every model library loads frozen)"
"$BIN" about --json > "$WORK/about.json" || fail "a library fails to load: $(cat "$WORK/about.json")"
"$PY" - "$WORK/about.json" <<'PYEOF' || fail "about"
import json, sys
facts = json.load(open(sys.argv[1]))
assert facts["frozen"], facts
bad = {k: v for k, v in facts["libraries"].items() if v in ("missing", "present") or v.startswith("fails")}
assert not bad, bad
print("   " + ", ".join(f"{k} {v}" for k, v in facts["libraries"].items()))
PYEOF

check_png() {
    "$PY" - "$1" <<'PYEOF'
import sys
from PIL import Image
image = Image.open(sys.argv[1]).convert("RGB")
assert image.width >= 800 and image.height >= 500, image.size
colours = image.resize((64, 40)).getcolors(4096)
assert colours is not None and len(colours) > 20, "a blank window"
print(f"   {sys.argv[1].rsplit('/', 1)[-1]}: {image.width}×{image.height}")
PYEOF
}

step "first run: no project named, the demo project opens"
QT_QPA_PLATFORM=offscreen MARGINALIA_CURATOR="Smoke Test" "$BIN" gui --screenshot "$WORK/first-run.png" \
    2>"$WORK/first.err" || fail "first run: $(tail -3 "$WORK/first.err")"
check_png "$WORK/first-run.png" || fail "first-run screenshot"
[[ -f "$HOME/.local/share/Marginalia/demo-project/project.sqlite" ]] || fail "the demo project was not made"

step "new / import / list / export"
"$BIN" new "$WORK/project" --name "Smoke" >/dev/null
mkdir -p "$WORK/scans"
if [[ -d "$SHARED/manuscripts" ]]; then
    cp "$SHARED/manuscripts/bengel_abriss01_1751_0007.jpg" "$SHARED/manuscripts/kant_aufklaerung_1784_0017.tif" \
       "$WORK/scans/"
else  # a machine without the shared samples (CI): the demo's scans
    cp "$REPO/assets/demo/bengel_abriss01_1751_0007.jpg" "$REPO/assets/demo/kant_aufklaerung_1784_0020.jp2" \
       "$WORK/scans/"
fi
"$BIN" import "$WORK/project" "$WORK/scans" >/dev/null
"$BIN" list "$WORK/project" --json > "$WORK/list.json"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['images'])==2, d" "$WORK/list.json" \
    || fail "list: $(head -c 300 "$WORK/list.json")"
"$BIN" export "$WORK/project" --out "$WORK/export.coco.json" >/dev/null
"$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); assert len(c['images'])==2, c['images']" \
    "$WORK/export.coco.json" || fail "export"

step "gui --screenshot (offscreen)"
QT_QPA_PLATFORM=offscreen "$BIN" gui "$WORK/project" --screenshot "$WORK/offscreen.png" 2>"$WORK/gui.err" \
    || fail "gui offscreen: $(tail -3 "$WORK/gui.err")"
check_png "$WORK/offscreen.png" || fail "offscreen screenshot"
if command -v Xvfb >/dev/null; then
    step "gui --screenshot (Xvfb, the xcb platform plug-in)"
    display=":$(( 90 + RANDOM % 100 ))"
    Xvfb "$display" -screen 0 1366x768x24 -nolisten tcp >/dev/null 2>&1 &
    xvfb=$!
    sleep 1
    # The project's database, as a file manager passes it on a double-click (the MIME type's handler).
    DISPLAY="$display" QT_QPA_PLATFORM=xcb "$BIN" gui "$WORK/project/project.sqlite" --screenshot "$WORK/xvfb.png" \
        2>"$WORK/xvfb.err" || { kill "$xvfb"; fail "gui under Xvfb: $(tail -3 "$WORK/xvfb.err")"; }
    kill "$xvfb"
    check_png "$WORK/xvfb.png" || fail "Xvfb screenshot"
fi

step "tiny SAM and CLIP through the installed model runtime"
MODELS="$HOME/.local/share/Marginalia/models"  # the installed app's own default folder
"$PY" "$REPO/packaging/install_tiny_models.py" "$MODELS" sam-vit-b clip-vit-b-32 >/dev/null
"$BIN" models check sam-vit-b | sed 's/^/   /' || fail "SAM"
"$BIN" models check clip-vit-b-32 | sed 's/^/   /' || fail "CLIP"
"$BIN" index "$WORK/project" --model clip-vit-b-32 >/dev/null || fail "CLIP indexing"
"$BIN" search "$WORK/project" "a coat of arms" --model clip-vit-b-32 --json > "$WORK/search.json" || fail "search"
"$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); assert len(r['results'])==2, r" "$WORK/search.json" \
    || fail "search found $(cat "$WORK/search.json")"
echo "   indexed and searched 2 pages"

step "nothing written outside the user's folders and the curator's files"
touch "$SCRATCH/ended"
strays=$(find "$SCRATCH" -newer "$SCRATCH/started" -type f ! -path "$SCRATCH/ended" \
    ! -path "$HOME/.local/share/Marginalia/*" ! -path "$HOME/.local/state/Marginalia/*" \
    ! -path "$HOME/.cache/Marginalia/*" ! -path "$HOME/.config/Marginalia/*" ! -path "$WORK/*" | head -20)
[[ -z "$strays" ]] || fail "files written elsewhere:
$strays"
[[ -z "$(find "$APP" -newer "$SCRATCH/started" | head -5)" ]] || fail "the installed app's folder was written to"
echo "SMOKE PASSED ($PACKAGE)"
