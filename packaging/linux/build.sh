#!/usr/bin/env bash
# Build the Linux packages: the frozen app (PyInstaller, one folder), a .deb that installs it under
# /opt/marginalia, and a portable .tar.gz. Run through `make package`; see packaging/README.md.
#
#   packaging/linux/build.sh [OUT_DIR]        (default: dist/)
#
# Environment: PYTHON (the venv's python, default .venv/bin/python), MARGINALIA_PACKAGE_WORK (scratch,
# default build/package).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "${1:-$REPO/dist}" && cd "${1:-$REPO/dist}" && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
WORK="${MARGINALIA_PACKAGE_WORK:-$REPO/build/package}"
mkdir -p "$WORK"

VERSION="$("$PY" -c 'import engine; print(engine.__version__)')"
COMMIT="$("$PY" -c 'from pathlib import Path; from engine.version import source_commit; print(source_commit(Path(".")))')"
case "$COMMIT" in *+changes) echo "note: building from a checkout with uncommitted changes ($COMMIT)" >&2 ;; esac
ARCH="x86_64"
DEB_ARCH="amd64"
BASENAME="marginalia_${VERSION}_${DEB_ARCH}"

echo "== Marginalia $VERSION ($COMMIT): freezing"
# What the installed app reports as its version and commit (engine/version.py reads it).
export MARGINALIA_BUILD_INFO="$WORK/build_info.json"  # carried to engine/ inside the app (freeze_manifest)
"$PY" "$REPO/packaging/write_build_info.py" "$MARGINALIA_BUILD_INFO" >/dev/null
started=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$WORK/dist" --workpath "$WORK/pyinstaller" \
    "$REPO/packaging/marginalia.spec"
echo "   frozen in $(( $(date +%s) - started )) s"
FROZEN="$WORK/dist/Marginalia"
test -x "$FROZEN/marginalia"

echo "== sizes"
"$PY" "$REPO/packaging/sizes.py" "$FROZEN" | tee "$OUT/${BASENAME}.sizes.txt"

echo "== .deb"
ROOT="$WORK/deb-root"
rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" "$ROOT/usr/share/mime/packages" \
    "$ROOT/usr/share/icons/hicolor/scalable/apps" "$ROOT/usr/share/doc/marginalia"
cp -a "$FROZEN" "$ROOT/opt/marginalia"
ln -s /opt/marginalia/marginalia "$ROOT/usr/bin/marginalia"
install -m 644 "$REPO/packaging/linux/org.marginalia.Marginalia.desktop" "$ROOT/usr/share/applications/"
install -m 644 "$REPO/packaging/linux/org.marginalia.Marginalia.xml" "$ROOT/usr/share/mime/packages/"
install -m 644 "$REPO/assets/marginalia.svg" \
    "$ROOT/usr/share/icons/hicolor/scalable/apps/org.marginalia.Marginalia.svg"
for size in 16 24 32 48 64 128 256 512; do
    mkdir -p "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps"
    install -m 644 "$REPO/packaging/icons/marginalia-${size}.png" \
        "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/org.marginalia.Marginalia.png"
done
install -m 644 "$REPO/packaging/linux/copyright" "$ROOT/usr/share/doc/marginalia/copyright"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_KB@/$INSTALLED_KB/" "$REPO/packaging/linux/control.in" \
    > "$ROOT/DEBIAN/control"
# Menus, MIME types and icon caches are refreshed by dpkg's triggers (desktop-file-utils,
# shared-mime-info, hicolor-icon-theme): no maintainer scripts are needed, on install, upgrade or removal.
find "$ROOT" -type d -exec chmod 755 {} +
started=$(date +%s)
dpkg-deb --root-owner-group -Zzstd -z9 --build "$ROOT" "$OUT/${BASENAME}.deb" >/dev/null
echo "   $(du -h "$OUT/${BASENAME}.deb" | cut -f1) in $(( $(date +%s) - started )) s"

echo "== portable .tar.gz"
TARBALL="$OUT/Marginalia-${VERSION}-linux-${ARCH}.tar.gz"
started=$(date +%s)
if command -v pigz >/dev/null; then squeeze="pigz -6"; else squeeze="gzip -6"; fi
tar -C "$WORK/dist" --owner=0 --group=0 -cf - Marginalia | $squeeze > "$TARBALL"
echo "   $(du -h "$TARBALL" | cut -f1) in $(( $(date +%s) - started )) s"

echo "== smoke test"
"$REPO/packaging/smoke.sh" "$OUT/${BASENAME}.deb"
echo "Packages in $OUT"
